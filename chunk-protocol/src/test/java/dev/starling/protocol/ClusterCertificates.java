package dev.starling.protocol;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A cluster CA and node certificates made with the JDK's keytool, for tests: {@code ca(name)} makes
 * {@code name.p12} (the CA's key), {@code name.crt} and the trust store {@code name-trust.p12};
 * {@code node(name, ca)} makes {@code name.p12} with a key and a certificate the CA signed (for
 * 127.0.0.1). Every store's password is {@link #PASSWORD}.
 */
public final class ClusterCertificates {
    public static final String PASSWORD = "changeit";
    private final Path dir;

    public ClusterCertificates(Path dir) {
        this.dir = dir;
    }

    public Path path(String file) {
        return dir.resolve(file);
    }

    void keytool(String... args) throws IOException, InterruptedException {
        List<String> argv = new ArrayList<>();
        argv.add(Path.of(System.getProperty("java.home"), "bin", "keytool").toString());
        argv.addAll(List.of(args));
        Process p = new ProcessBuilder(argv).directory(dir.toFile()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        if (p.waitFor() != 0) {
            throw new IOException("keytool " + String.join(" ", args) + ": " + out);
        }
    }

    /** A CA: {@code ca}.p12, its certificate {@code ca}.crt and a trust store {@code ca}-trust.p12. */
    public ClusterCertificates ca(String ca) throws Exception {
        keytool("-genkeypair", "-alias", "ca", "-keyalg", "EC", "-dname", "CN=" + ca, "-ext", "bc:c", "-validity", "2",
                "-keystore", ca + ".p12", "-storepass", PASSWORD, "-storetype", "PKCS12");
        keytool("-exportcert", "-alias", "ca", "-keystore", ca + ".p12", "-storepass", PASSWORD, "-rfc", "-file", ca + ".crt");
        keytool("-importcert", "-alias", "ca", "-keystore", ca + "-trust.p12", "-storepass", PASSWORD, "-file", ca + ".crt",
                "-noprompt", "-storetype", "PKCS12");
        return this;
    }

    /** A node key store {@code node}.p12 holding a key and a certificate signed by {@code ca}. */
    public ClusterCertificates node(String node, String ca) throws Exception {
        keytool("-genkeypair", "-alias", "node", "-keyalg", "EC", "-dname", "CN=" + node, "-validity", "2",
                "-keystore", node + ".p12", "-storepass", PASSWORD, "-storetype", "PKCS12");
        keytool("-certreq", "-alias", "node", "-keystore", node + ".p12", "-storepass", PASSWORD, "-file", node + ".csr");
        keytool("-gencert", "-alias", "ca", "-keystore", ca + ".p12", "-storepass", PASSWORD, "-infile", node + ".csr",
                "-outfile", node + ".crt", "-ext", "SAN=ip:127.0.0.1", "-validity", "2", "-rfc");
        keytool("-importcert", "-alias", "ca", "-keystore", node + ".p12", "-storepass", PASSWORD, "-file", ca + ".crt", "-noprompt");
        keytool("-importcert", "-alias", "node", "-keystore", node + ".p12", "-storepass", PASSWORD, "-file", node + ".crt");
        return this;
    }
}
