package dev.starling.cli;

import dev.starling.fuse.SystemCommand;
import java.nio.file.Path;
import java.util.concurrent.Callable;
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
        try {
            SystemCommand.run("umount", "-l", target.toString());
            return 0;
        } catch (java.io.IOException e) {
            System.err.println("starling: cannot unmount " + target + ": " + e.getMessage());
            return 1;
        }
    }
}
