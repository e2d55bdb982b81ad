package dev.starling.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class ImageReferenceTest {
    @ParameterizedTest
    @CsvSource({
            "ubuntu, docker.io/library/ubuntu:latest",
            "ubuntu:22.04, docker.io/library/ubuntu:22.04",
            "user/app, docker.io/user/app:latest",
            "docker.io/ubuntu, docker.io/library/ubuntu:latest",
            "index.docker.io/library/ubuntu:1, docker.io/library/ubuntu:1",
            "127.0.0.1:5000/small, 127.0.0.1:5000/small:latest",
            "localhost/a/b/c:v1, localhost/a/b/c:v1",
            "ghcr.io/org/img@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef, ghcr.io/org/img@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "reg.example.com:443/x:t@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef, reg.example.com:443/x:t@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "docker://quay.io/a_b/c-d.e:tag_1, quay.io/a_b/c-d.e:tag_1",
    })
    void normalises(String input, String expected) {
        assertEquals(expected, ImageReference.parse(input).toString());
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "''|empty",
            "Ubuntu|invalid repository",
            "host.com/a//b|invalid repository",
            "ubuntu@sha256:abc|invalid digest",
            "ubuntu@md5:0123456789abcdef0123456789abcdef|invalid digest",
            "ubuntu:bad tag|invalid tag",
            "host.com/|no repository",
            "host.com/../etc|invalid repository",
    })
    void rejectsWithTheReason(String input, String reason) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ImageReference.parse(input));
        assertTrue(e.getMessage().contains(reason), e.getMessage());
    }

    @ParameterizedTest
    @CsvSource({"ubuntu, registry-1.docker.io", "127.0.0.1:5000/x, 127.0.0.1:5000"})
    void apiHost(String input, String host) {
        assertEquals(host, ImageReference.parse(input).apiHost());
    }
}
