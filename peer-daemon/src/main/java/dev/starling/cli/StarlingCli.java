package dev.starling.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code starling} command line. */
@Command(name = "starling", mixinStandardHelpOptions = true, versionProvider = StarlingCli.Version.class,
        description = "Lazy, peer-to-peer eStargz image layers for large clusters.",
        subcommands = {ConvertCommand.class, InspectCommand.class, MountCommand.class, UmountCommand.class,
                DaemonCommand.class, StatusCommand.class, StoreAuthCommand.class, DemoCommand.class,
                CommandLine.HelpCommand.class})
public final class StarlingCli {

    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Runs a command line and returns its exit code (tests call this in-process). */
    public static int run(String... args) {
        CommandLine cli = new CommandLine(new StarlingCli());
        // `starling COMMAND -V` prints the version too, not nothing
        cli.getSubcommands().values().forEach(c -> c.getCommandSpec().versionProvider(new Version()));
        cli.setExecutionExceptionHandler((e, line, parsed) -> {
            line.getErr().println("starling: " + message(e));
            if (System.getenv("STARLING_DEBUG") != null) {
                e.printStackTrace(line.getErr());
            }
            return 1;
        });
        return cli.execute(args);
    }

    static String message(Throwable e) {
        if (e instanceof java.nio.file.FileSystemException f && f.getReason() == null) {
            // Java names only the path; say what about it
            String what = switch (f) {
                case java.nio.file.NoSuchFileException x -> "no such file or directory";
                case java.nio.file.AccessDeniedException x -> "permission denied";
                case java.nio.file.FileAlreadyExistsException x -> "already exists (and is in the way)";
                case java.nio.file.NotDirectoryException x -> "not a directory";
                case java.nio.file.DirectoryNotEmptyException x -> "directory not empty";
                default -> f.getClass().getSimpleName();
            };
            return f.getFile() + (f.getOtherFile() == null ? "" : " -> " + f.getOtherFile()) + ": " + what;
        }
        String m = e.getMessage();
        return m == null || m.isBlank() ? e.toString() : m;
    }

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = StarlingCli.class.getPackage().getImplementationVersion();
            return new String[] {"starling " + (v == null ? "dev" : v) + " (Java " + Runtime.version() + ")"};
        }
    }
}
