package dev.starling.cli;

import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/** {@code starling umount DIR}: ends a {@code starling mount}, which then releases its layers and exits. */
@Command(name = "umount", mixinStandardHelpOptions = true,
        description = "Unmount an image mounted with `starling mount`; that process then unmounts its layers and exits.")
final class UmountCommand implements Callable<Integer> {
    @Parameters(paramLabel = "DIR")
    Path target;

    @Override
    public Integer call() throws Exception {
        Process p = new ProcessBuilder("umount", "-l", target.toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes()).strip();
        if (!p.waitFor(30, TimeUnit.SECONDS) || p.exitValue() != 0) {
            System.err.println("starling: cannot unmount " + target + ": " + out);
            return 1;
        }
        return 0;
    }
}
