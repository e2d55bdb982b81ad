package dev.starling.registry;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.InetAddress;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.logging.Logger;
import okhttp3.Call;
import okhttp3.Credentials;
import okhttp3.FormBody;
import okhttp3.HttpUrl;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.Response;

/**
 * Every registry request goes through here: scheme choice (plain http only for loopback and hosts
 * configured insecure), the 401 challenge flow (basic or bearer token, tokens cached per host and
 * scope), one redirect hop without credentials, and retries with jittered exponential backoff on
 * connection errors, 429 and 5xx (honouring Retry-After) within an overall deadline.
 */
final class RegistryTransport {
    private static final Logger LOG = Logger.getLogger(RegistryTransport.class.getName());
    private static final ObjectMapper JSON = new ObjectMapper();

    final OkHttpClient http;
    private final CredentialProvider credentials;
    private final Set<String> insecureHosts;
    private final RegistryClient.Settings settings;
    private final Map<String, CachedAuth> authCache = new ConcurrentHashMap<>();

    private record CachedAuth(String header, long expiresAtNanos, boolean fromCredentials) {
        boolean valid() {
            return System.nanoTime() < expiresAtNanos;
        }
    }

    /** What every request of Starling's says it is. */
    static final String USER_AGENT = "starling/0.1";

    RegistryTransport(RegistryClient.Settings settings) {
        this.settings = settings;
        this.credentials = settings.credentials();
        this.insecureHosts = settings.insecureHosts();
        this.http = new OkHttpClient.Builder()
                .followRedirects(false)
                .followSslRedirects(false)
                // a request fails when nothing arrives for the request timeout, not when a body that keeps
                // flowing takes longer (a saturated registry is slow, not dead); the operation's deadline bounds it
                .callTimeout(settings.deadline())
                .connectTimeout(Duration.ofSeconds(10))
                .readTimeout(settings.requestTimeout())
                .retryOnConnectionFailure(false) // retries are ours, counted and backed off
                // a registry's operator sees who fetches: Starling's lazy reads apart from runtimes' pulls
                .addNetworkInterceptor(chain -> chain.proceed(chain.request().newBuilder()
                        .header("User-Agent", USER_AGENT).build()))
                .build();
    }

    /** {@code scheme://host/v2/<repository>/<path>}. */
    HttpUrl url(ImageReference repo, String path) {
        String host = repo.apiHost();
        return HttpUrl.get(scheme(host) + "://" + host + "/v2/" + repo.repository() + "/" + path);
    }

    String scheme(String host) {
        return plainHttp(host) ? "http" : "https";
    }

    private boolean plainHttp(String hostAndPort) {
        if (insecureHosts.contains(hostAndPort)) {
            return true;
        }
        String host = hostAndPort.startsWith("[") ? hostAndPort.substring(1, hostAndPort.indexOf(']'))
                : hostAndPort.contains(":") ? hostAndPort.substring(0, hostAndPort.lastIndexOf(':')) : hostAndPort;
        if (host.equals("localhost") || insecureHosts.contains(host)) {
            return true;
        }
        try {
            return Character.isDigit(host.charAt(0)) || host.contains(":")
                    ? InetAddress.getByName(host).isLoopbackAddress() : false;
        } catch (IOException e) {
            return false;
        }
    }

    /**
     * Sends a request for {@code repo} with the given scope actions ("pull" or "pull,push"), and
     * {@code extraScopes} for cross-repository mounts. Reads (GET, HEAD) go to the registry's
     * configured mirrors first, in order, with {@code ?ns=<registry>}; a mirror that fails or answers
     * with an error is skipped without retries, and the registry itself is the last host tried.
     * The caller closes the response.
     */
    Response execute(ImageReference repo, String actions, List<String> extraScopes, Request request)
            throws IOException {
        List<RegistryClient.Mirror> mirrors = settings.mirrors().getOrDefault(repo.registry(), List.of());
        boolean read = request.method().equals("GET") || request.method().equals("HEAD");
        if (!read || mirrors.isEmpty() || !request.url().host().equals(hostOnly(repo.apiHost()))) {
            return executeOn(repo, repo.registry(), actions, extraScopes, request, settings.maxRetries());
        }
        IOException lastFailure = null;
        for (RegistryClient.Mirror mirror : mirrors) {
            HttpUrl base = HttpUrl.get((mirror.insecure() || plainHttp(mirror.host()) ? "http" : "https") + "://"
                    + mirror.host() + "/");
            HttpUrl url = request.url().newBuilder().scheme(base.scheme()).host(base.host()).port(base.port())
                    .addQueryParameter("ns", repo.registry()).build();
            try {
                Response r = executeOn(repo, mirror.host(), actions, extraScopes, request.newBuilder().url(url).build(), 0);
                if (r.isSuccessful()) {
                    return r;
                }
                r.close();
            } catch (IOException e) {
                lastFailure = e;
            }
        }
        try {
            return executeOn(repo, repo.registry(), actions, extraScopes, request, settings.maxRetries());
        } catch (IOException e) {
            if (lastFailure != null) {
                e.addSuppressed(lastFailure);
            }
            throw e;
        }
    }

    private static String hostOnly(String hostAndPort) {
        return HttpUrl.get("http://" + hostAndPort + "/").host();
    }

    private Response executeOn(ImageReference repo, String credentialHost, String actions, List<String> extraScopes,
                               Request request, int maxRetries) throws IOException {
        String scope = "repository:" + repo.repository() + ":" + actions;
        String cacheKey = request.url().host() + ":" + request.url().port() + " " + scope + " " + extraScopes;
        long deadline = System.nanoTime() + settings.deadline().toNanos();
        boolean challenged = false;
        boolean usedCredentials = false;
        for (int attempt = 0; ; attempt++) {
            CachedAuth auth = authCache.get(cacheKey);
            Request.Builder b = request.newBuilder();
            if (auth != null && auth.valid()) {
                b.header("Authorization", auth.header());
            }
            Response response;
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                throw new RegistryException(request.method() + " " + redact(request.url()) + " got no answer within "
                        + settings.deadline().toSeconds() + " s (" + attempt + " attempt(s))", -1);
            }
            try {
                Call call = http.newCall(b.build());
                // each attempt ends by the operation's deadline, so the whole operation does; within it, an
                // attempt lives while bytes flow (readTimeout: the request timeout without a byte)
                call.timeout().timeout(left, TimeUnit.NANOSECONDS);
                response = call.execute();
            } catch (IOException e) {
                if (e instanceof InterruptedIOException && Thread.currentThread().isInterrupted()) {
                    throw e;
                }
                if (!backOff(attempt, maxRetries, deadline, -1)) {
                    throw new RegistryException(request.method() + " " + redact(request.url()) + " failed after "
                            + (attempt + 1) + " attempt(s) in " + secondsSince(deadline) + " s: " + e.getMessage(), e);
                }
                retrying(request, attempt, maxRetries, e.toString());
                continue;
            }
            int code = response.code();
            if (code == 401 && !challenged) {
                challenged = true;
                Challenge challenge = Challenge.parse(response.header("WWW-Authenticate"));
                response.close();
                CachedAuth fresh = authenticate(repo, credentialHost, challenge, scope, extraScopes);
                authCache.put(cacheKey, fresh);
                usedCredentials = fresh.fromCredentials();
                continue;
            }
            if (code == 401 && usedCredentials) {
                response.close();
                authCache.remove(cacheKey);
                throw new RegistryException(credentialHost + " refused the credentials configured for it (from "
                        + credentials.source() + "); check them with `docker login " + credentialHost + "`", 401);
            }
            if (code == 429 || code >= 500 && code != 501) {
                long retryAfter = retryAfterMillis(response.header("Retry-After"));
                if (backOff(attempt, maxRetries, deadline, retryAfter)) {
                    response.close();
                    retrying(request, attempt, maxRetries, "HTTP " + code);
                    continue;
                }
            }
            if (code >= 300 && code < 400 && response.header("Location") != null) {
                HttpUrl target = response.request().url().resolve(response.header("Location"));
                response.close();
                // One hop, and nothing of ours goes with it: pre-signed storage URLs carry their own auth.
                return http.newCall(new Request.Builder().url(target).method(request.method(), request.body())
                        .headers(request.headers().newBuilder().removeAll("Authorization").build()).build()).execute();
            }
            return response;
        }
    }

    /** The first retry of an operation is said (a registry that hangs would otherwise give minutes of silence). */
    private void retrying(Request request, int attempt, int maxRetries, String why) {
        if (attempt == 0) {
            LOG.warning(request.method() + " " + redact(request.url()) + " failed (" + why + "); retrying up to "
                    + maxRetries + " times within " + settings.deadline().toSeconds() + " s");
        }
    }

    private long secondsSince(long deadline) {
        return (System.nanoTime() - (deadline - settings.deadline().toNanos())) / 1_000_000_000L;
    }

    private boolean backOff(int attempt, int maxRetries, long deadline, long retryAfterMillis) {
        if (attempt >= maxRetries) {
            return false;
        }
        long base = Math.min(settings.maxBackoff().toMillis(), settings.minBackoff().toMillis() << Math.min(attempt, 20));
        long delay = Math.max(base + ThreadLocalRandom.current().nextLong(base + 1), retryAfterMillis);
        if (System.nanoTime() + delay * 1_000_000 > deadline) {
            return false;
        }
        try {
            Thread.sleep(delay);
            return true;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    static long retryAfterMillis(String header) {
        if (header == null) {
            return -1;
        }
        try {
            return Long.parseLong(header.strip()) * 1000;
        } catch (NumberFormatException e) {
            try {
                long at = java.time.ZonedDateTime.parse(header.strip(),
                        java.time.format.DateTimeFormatter.RFC_1123_DATE_TIME).toInstant().toEpochMilli();
                return Math.max(0, at - System.currentTimeMillis());
            } catch (java.time.format.DateTimeParseException e2) {
                return -1;
            }
        }
    }

    private CachedAuth authenticate(ImageReference repo, String credentialHost, Challenge challenge, String scope,
                                    List<String> extraScopes) throws IOException {
        Optional<dev.starling.registry.Credentials> creds = credentials.credentials(credentialHost);
        if (challenge == null || challenge.isBasic()) {
            if (creds.isEmpty() || creds.get().identityToken()) {
                throw new RegistryException(credentialHost + " requires a user name and password (401) and none "
                        + "is configured for it (docker login, or $DOCKER_CONFIG/config.json)", 401);
            }
            return new CachedAuth(Credentials.basic(creds.get().username(), creds.get().secret()), Long.MAX_VALUE, true);
        }
        if (!challenge.isBearer()) {
            throw new RegistryException(repo.registry() + " asks for unsupported authentication "
                    + challenge.scheme(), 401);
        }
        String realm = challenge.params().get("realm");
        HttpUrl realmUrl = realm == null ? null : HttpUrl.parse(realm);
        if (realmUrl == null) {
            throw new RegistryException(repo.registry() + " sent a bearer challenge without a valid realm", 401);
        }
        String service = challenge.params().getOrDefault("service", "");
        Request tokenRequest;
        if (creds.isPresent() && creds.get().identityToken()) {
            FormBody.Builder form = new FormBody.Builder().add("grant_type", "refresh_token")
                    .add("refresh_token", creds.get().secret()).add("service", service)
                    .add("client_id", "starling").add("scope", scope);
            extraScopes.forEach(s -> form.add("scope", s));
            tokenRequest = new Request.Builder().url(realmUrl).post(form.build()).build();
        } else {
            HttpUrl.Builder u = realmUrl.newBuilder().addQueryParameter("service", service).addQueryParameter("scope", scope);
            extraScopes.forEach(s -> u.addQueryParameter("scope", s));
            Request.Builder rb = new Request.Builder().url(u.build());
            creds.ifPresent(c -> rb.header("Authorization", Credentials.basic(c.username(), c.secret())));
            tokenRequest = rb.build();
        }
        try (Response r = http.newCall(tokenRequest).execute()) {
            if (!r.isSuccessful()) {
                throw new RegistryException("token server " + redact(realmUrl) + " refused " + scope + ": HTTP "
                        + r.code() + (creds.isEmpty() ? " (no credentials are configured for " + repo.registry() + ")"
                        : r.code() == 401 ? " (it refused the credentials configured for " + credentialHost + ", from "
                        + credentials.source() + "; check them with `docker login " + credentialHost + "`)" : ""),
                        r.code());
            }
            JsonNode body = JSON.readTree(r.body().byteStream());
            String token = body.path("token").asText(body.path("access_token").asText(""));
            if (token.isEmpty()) {
                throw new RegistryException("token server " + redact(realmUrl) + " answered without a token", r.code());
            }
            long expiresIn = Math.max(10, body.path("expires_in").asLong(60));
            return new CachedAuth("Bearer " + token, System.nanoTime() + (expiresIn - 5) * 1_000_000_000L, creds.isPresent());
        }
    }

    /** A URL for error messages: without query (pre-signed URLs carry secrets there). */
    static String redact(HttpUrl url) {
        return url.newBuilder().query(null).build().toString();
    }

    /** Reads a registry error body ({"errors":[{"code","message"}]}) into a short text. */
    static String errorText(Response response) {
        try {
            String body = response.body().string();
            JsonNode errors = JSON.readTree(body).path("errors");
            if (errors.isArray() && !errors.isEmpty()) {
                JsonNode e = errors.get(0);
                return e.path("code").asText() + ": " + e.path("message").asText();
            }
            return body.length() > 200 ? body.substring(0, 200) : body;
        } catch (IOException | RuntimeException e) {
            return "";
        }
    }

    static RegistryException failure(String what, Response response) {
        String detail = errorText(response);
        String message = what + ": HTTP " + response.code() + (detail.isBlank() ? "" : " (" + detail + ")");
        return response.code() == 404 ? new NotFoundException(message) : new RegistryException(message, response.code());
    }
}
