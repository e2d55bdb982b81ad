package dev.starling.mount;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Reading a layer's state file the way an operator does: a field, or waiting until it says something. */
final class StateFiles {
    private StateFiles() {
    }

    static long field(String state, String name) {
        Matcher m = Pattern.compile("\"" + name + "\":(\\d+)").matcher(state);
        assertTrue(m.find(), name + " in " + state);
        return Long.parseLong(m.group(1));
    }

    /** Polls {@code state} until {@code done} holds (90 s at most); returns the state that did. */
    static String await(Callable<String> state, Predicate<String> done) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
        String s = state.call();
        while (!done.test(s) && System.nanoTime() < deadline) {
            Thread.sleep(50);
            s = state.call();
        }
        assertTrue(done.test(s), "timed out: " + s);
        return s;
    }
}
