package dev.starling.fuse;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.cryptomator.jfuse.api.Errno;

/**
 * What a file system answers a failure no one foresaw (a bug, a hostile TOC deeper than a stack,
 * memory running out): EIO for that one call, instead of an exception escaping into libfuse, which
 * would end the process and every mount it serves. The first failure of each kind is logged in
 * full, the rest at FINE, so a hostile image cannot flood the log.
 */
final class UnexpectedFailures {
    private final Logger log;
    private final Errno errno;
    private final Set<String> logged = ConcurrentHashMap.newKeySet();

    UnexpectedFailures(Logger log, Errno errno) {
        this.log = log;
        this.errno = errno;
    }

    /** Logs {@code t} (once per operation and type in full) and returns the errno to answer: -EIO. */
    int answer(String operation, String path, Throwable t) {
        String kind = operation + " " + t.getClass().getName();
        if (logged.add(kind)) {
            log.log(Level.SEVERE, operation + " of " + abbreviated(path) + " failed unexpectedly; answering EIO "
                    + "(further " + kind + " failures are logged at FINE)", t);
        } else {
            log.log(Level.FINE, operation + " of " + abbreviated(path) + " failed unexpectedly", t);
        }
        return -errno.eio();
    }

    /** A path short enough for a log line: a hostile one can be thousands of levels deep. */
    static String abbreviated(String path) {
        return path.length() <= 200 ? path : path.substring(0, 100) + "..." + path.substring(path.length() - 100);
    }
}
