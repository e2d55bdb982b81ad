package dev.starling.cli;

import dev.starling.registry.DockerConfigCredentials;
import dev.starling.registry.RegistryClient;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import picocli.CommandLine.Option;

/** How commands reach registries: credentials from the docker config, insecure hosts, mirrors. */
final class RegistryOptions {
    @Option(names = "--insecure-registry", paramLabel = "HOST[:PORT]", split = ",",
            description = "registries and mirrors reached over plain http (loopback always is)")
    Set<String> insecure = Set.of();

    @Option(names = "--registry-mirror", paramLabel = "REGISTRY=HOST[:PORT]",
            description = "read REGISTRY's content from HOST first (repeatable, tried in order; ?ns=REGISTRY is added)")
    List<String> mirrorSpecs = List.of();

    RegistryClient.Settings settings() {
        for (String host : insecure) {
            if (host.contains("://") || host.contains("/") || host.isBlank()) {
                throw new IllegalArgumentException("--insecure-registry takes HOST[:PORT], not \"" + host
                        + "\" (leave out the scheme and any path: plain http is what the option means)");
            }
        }
        Map<String, List<RegistryClient.Mirror>> mirrors = new LinkedHashMap<>();
        for (String spec : mirrorSpecs) {
            int eq = spec.indexOf('=');
            if (eq <= 0 || eq == spec.length() - 1) {
                throw new IllegalArgumentException("--registry-mirror takes REGISTRY=HOST[:PORT], not " + spec);
            }
            String host = spec.substring(eq + 1);
            mirrors.computeIfAbsent(spec.substring(0, eq), k -> new ArrayList<>())
                    .add(new RegistryClient.Mirror(host, insecure.contains(host)));
        }
        return RegistryClient.Settings.defaults().withCredentials(DockerConfigCredentials.fromEnvironment())
                .withInsecureHosts(insecure).withMirrors(mirrors);
    }
}
