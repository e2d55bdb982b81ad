package dev.starling.cli;

import dev.starling.fuse.MountTable;
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

    @picocli.CommandLine.Option(names = "--socket", paramLabel = "PATH",
            description = "the node daemon that mounted DIR (default: the one at /run/starling/starling.sock, if any)")
    Path socket;

    @Override
    public Integer call() throws Exception {
        Path daemon = dev.starling.daemon.ControlSocket.daemonFor(socket);
        if (daemon != null) {
            var answer = dev.starling.daemon.ControlSocket.call(daemon, new com.fasterxml.jackson.databind.ObjectMapper()
                    .createObjectNode().put("op", "umount").put("target", target.toAbsolutePath().toString()));
            if (answer.path("ok").asBoolean()) {
                return 0;
            }
            if (socket != null) {
                System.err.println("starling: " + answer.path("error").asText());
                return 1;
            }
            // not the daemon's: a standalone `starling mount`'s, handled below
        }
        try {
            if (MountTable.isDead(target)) {
                // its `starling mount` was killed: nobody is left to unmount the layers, so do it here
                dev.starling.mount.ImageMount.clearDeadOverlay(target);
                for (Path layer : MountTable.clearDeadLayerMounts()) {
                    System.out.println("cleared the dead layer mount " + layer);
                }
                System.out.println("cleared the dead mount at " + target + " (its starling mount had died)");
                return 0;
            }
            if (MountTable.at(target).isEmpty()) {
                System.err.println("starling: nothing is mounted at " + target);
                return 1;
            }
            SystemCommand.run("umount", "-l", target.toString());
            return 0;
        } catch (java.io.IOException e) {
            System.err.println("starling: cannot unmount " + target + ": " + e.getMessage());
            return 1;
        }
    }
}
