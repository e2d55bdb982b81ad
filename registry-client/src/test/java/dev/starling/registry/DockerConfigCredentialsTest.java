package dev.starling.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Base64;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Docker's config.json as {@code docker login} writes it, and a real credential-helper program. */
class DockerConfigCredentialsTest {
    @TempDir
    Path dir;

    private DockerConfigCredentials config(String json) throws Exception {
        Path file = dir.resolve("config.json");
        Files.writeString(file, json);
        return new DockerConfigCredentials(file);
    }

    @Test
    void authEntriesDecodeToUserAndPassword() throws Exception {
        String auth = Base64.getEncoder().encodeToString("alice:pa:ss".getBytes());
        DockerConfigCredentials c = config("{\"auths\":{\"reg.example.com:5000\":{\"auth\":\"" + auth + "\"},"
                + "\"https://index.docker.io/v1/\":{\"auth\":\"" + Base64.getEncoder().encodeToString("bob:pw".getBytes())
                + "\"},\"ghcr.io\":{\"identitytoken\":\"refresh-me\"}}}");
        assertEquals(Optional.of(Credentials.basic("alice", "pa:ss")), c.credentials("reg.example.com:5000"));
        assertEquals(Optional.of(Credentials.basic("bob", "pw")), c.credentials("docker.io"));
        assertEquals(Optional.of(Credentials.identityToken("refresh-me")), c.credentials("ghcr.io"));
        assertEquals(Optional.empty(), c.credentials("quay.io"));
    }

    @Test
    void missingFileMeansAnonymous() throws Exception {
        assertEquals(Optional.empty(), new DockerConfigCredentials(dir.resolve("none.json")).credentials("x.io"));
    }

    @Test
    void brokenFileIsAClearError() throws Exception {
        DockerConfigCredentials c = config("{not json");
        var e = assertThrows(java.io.IOException.class, () -> c.credentials("x.io"));
        assertTrue(e.getMessage().contains("config.json"), e.getMessage());
    }

    @Test
    void credentialHelperProgramIsAskedWithTheServerOnStdin() throws Exception {
        Path bin = Files.createDirectories(dir.resolve("bin"));
        Path helper = bin.resolve("docker-credential-starlingtest");
        Files.writeString(helper, """
                #!/bin/sh
                read server
                [ "$1" = get ] || exit 2
                if [ "$server" = "helped.example.com" ]; then
                  echo '{"ServerURL":"helped.example.com","Username":"carol","Secret":"from-helper"}'
                else
                  echo "credentials not found in native keychain"; exit 1
                fi
                """);
        Files.setPosixFilePermissions(helper, PosixFilePermissions.fromString("rwxr-xr-x"));
        Path file = dir.resolve("config.json");
        Files.writeString(file, "{\"credHelpers\":{\"helped.example.com\":\"starlingtest\"}}");
        DockerConfigCredentials c = new DockerConfigCredentials(file, java.util.List.of(bin));
        assertEquals(Optional.of(Credentials.basic("carol", "from-helper")), c.credentials("helped.example.com"));
        assertEquals(Optional.empty(), c.credentials("other.example.com"));
        DockerConfigCredentials noHelper = new DockerConfigCredentials(file, java.util.List.of(dir));
        var e = assertThrows(java.io.IOException.class, () -> noHelper.credentials("helped.example.com"));
        assertTrue(e.getMessage().contains("docker-credential-starlingtest"), e.getMessage());
    }
}
