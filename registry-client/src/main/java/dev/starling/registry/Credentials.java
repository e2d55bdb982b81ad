package dev.starling.registry;

/**
 * What to authenticate with: a user name and password, or an identity (refresh) token, which Docker
 * stores with an empty user name.
 */
public record Credentials(String username, String secret, boolean identityToken) {
    public static Credentials basic(String username, String password) {
        return new Credentials(username, password, false);
    }

    public static Credentials identityToken(String token) {
        return new Credentials("", token, true);
    }

    @Override
    public String toString() {
        return "Credentials[" + (identityToken ? "identity token" : username) + "]";
    }
}
