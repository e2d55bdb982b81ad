package dev.starling.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;

/** A {@code --prioritize} file: the paths read at start-up, one per line, in access order. */
final class PrioritizedList {
    private PrioritizedList() {
    }

    static List<String> read(Path file) throws IOException {
        if (Files.isDirectory(file)) {
            throw new IOException("--prioritize " + file + " is a directory; it takes a file listing one path per line");
        }
        try {
            return Files.readAllLines(file).stream().map(String::strip).filter(s -> !s.isEmpty() && !s.startsWith("#"))
                    .toList();
        } catch (NoSuchFileException e) {
            throw new IOException("--prioritize " + file + ": no such file (it lists the paths read at start-up, one per line)", e);
        }
    }
}
