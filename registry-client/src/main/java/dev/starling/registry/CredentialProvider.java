package dev.starling.registry;

import java.io.IOException;
import java.util.Optional;

/** Where credentials for a registry come from (docker config.json, a Kubernetes secret, a test). */
@FunctionalInterface
public interface CredentialProvider {
    CredentialProvider ANONYMOUS = registry -> Optional.empty();

    Optional<Credentials> credentials(String registry) throws IOException;

    /** Where the credentials come from, for a message when a registry refuses them. */
    default String source() {
        return "the configured credentials";
    }

    static CredentialProvider of(String registry, Credentials credentials) {
        return r -> r.equals(registry) ? Optional.of(credentials) : Optional.empty();
    }
}
