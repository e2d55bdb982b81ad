package dev.starling.cli;

import java.io.PrintStream;

/** A one-line progress bar on stderr, drawn only on a terminal and at most ten times a second. */
final class ProgressBar implements AutoCloseable {
    private final PrintStream err;
    private final String label;
    private final boolean enabled;
    private long lastDraw;
    private boolean drawn;

    ProgressBar(String label) {
        this.err = System.err;
        this.label = label;
        this.enabled = System.console() != null && System.console().isTerminal();
    }

    void update(long done, long total) {
        if (!enabled) {
            return;
        }
        long now = System.nanoTime();
        if (now - lastDraw < 100_000_000L && done < total) {
            return;
        }
        lastDraw = now;
        int width = 30;
        double fraction = total <= 0 ? 1 : Math.min(1, (double) done / total);
        int filled = (int) (fraction * width);
        err.printf("\r%s [%s%s] %3d%% %s / %s", label, "#".repeat(filled), " ".repeat(width - filled),
                (int) (fraction * 100), Sizes.human(done), Sizes.human(total));
        drawn = true;
    }

    @Override
    public void close() {
        if (drawn) {
            err.print("\r\033[K");
            err.flush();
        }
    }
}
