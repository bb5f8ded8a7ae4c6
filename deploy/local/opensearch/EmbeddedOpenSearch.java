// A single OpenSearch node embedded in a plain JVM, for the local stack (deploy/local).
//
// The distribution's tarball is not on Maven Central, but the server jar and its modules are.
// Node's protected constructor takes plugin classes from the classpath, so the modules the
// platform needs run without a plugins/ or modules/ folder. All settings come from
// <config dir>/opensearch.yml, which deploy/local/engines/opensearch.sh writes.
//
// Without the security plugin the node would answer anyone, so BasicAuthNetty4Plugin below asks
// every HTTP request for Basic credentials of a user in <config dir>/users (also written by the
// script). It runs inside the node, on the request's own thread: no proxy, no extra hop to skew
// the benchmarks.
//
// Usage: java -Dopensearch.path.home=DIR -cp 'lib/*:launcher' EmbeddedOpenSearch <config dir>

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Base64;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.Optional;
import java.util.function.Supplier;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import org.opensearch.analysis.common.CommonAnalysisPlugin;
import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.network.NetworkService;
import org.opensearch.common.settings.ClusterSettings;
import org.opensearch.common.settings.Settings;
import org.opensearch.common.util.BigArrays;
import org.opensearch.common.util.PageCacheRecycler;
import org.opensearch.common.util.concurrent.ThreadContext;
import org.opensearch.core.indices.breaker.CircuitBreakerService;
import org.opensearch.core.rest.RestStatus;
import org.opensearch.core.xcontent.NamedXContentRegistry;
import org.opensearch.env.Environment;
import org.opensearch.index.mapper.MapperExtrasPlugin;
import org.opensearch.index.reindex.ReindexPlugin;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.painless.PainlessPlugin;
import org.opensearch.http.HttpServerTransport;
import org.opensearch.plugins.Plugin;
import org.opensearch.rest.BytesRestResponse;
import org.opensearch.rest.RestChannel;
import org.opensearch.rest.RestHandler;
import org.opensearch.rest.RestRequest;
import org.opensearch.telemetry.tracing.Tracer;
import org.opensearch.threadpool.ThreadPool;
import org.opensearch.transport.Netty4Plugin;

public final class EmbeddedOpenSearch {

    private static final List<Class<? extends Plugin>> PLUGINS = List.of(
        BasicAuthNetty4Plugin.class, // HTTP (Basic authentication on every request) and transport
        CommonAnalysisPlugin.class,  // english/simple analyzers, token filters
        PainlessPlugin.class,        // scripts
        MapperExtrasPlugin.class,    // scaled_float, token_count, search_as_you_type
        ReindexPlugin.class          // _delete_by_query, _update_by_query, _reindex
    );

    /**
     * Netty's HTTP transport with HTTP Basic authentication in front of the REST dispatcher.
     *
     * <p>The check wraps the dispatcher the transport hands every request to, not the REST
     * handlers (ActionPlugin#getRestHandlerWrapper, the security plugin's hook): the dispatcher
     * answers some requests itself before any handler runs (unknown paths, wrong methods,
     * OPTIONS, unsupported content types), and those must not answer strangers either.
     *
     * <p>The users come from {@code <config dir>/users}, read once at start-up: one
     * {@code name:salt:hash} line per user, hash being the hex SHA-256 of the salt's text
     * followed by the password. The passwords are long random secrets, so a fast hash is enough
     * to keep them out of the file; the node refuses to start without at least one user, so it
     * never runs open by mistake. A request without valid credentials gets 401 with a
     * {@code WWW-Authenticate} challenge and an OpenSearch-shaped JSON error.
     */
    public static final class BasicAuthNetty4Plugin extends Netty4Plugin {
        private static final Logger LOG = LogManager.getLogger(BasicAuthNetty4Plugin.class);

        private record User(byte[] salt, byte[] hash) {}

        private final Map<String, User> users;
        // Hashed when the user name is unknown, so that an unknown name costs what a wrong
        // password does.
        private final User nobody = new User(new byte[16], new byte[32]);

        // PluginsService passes the node's settings and config dir to this constructor.
        public BasicAuthNetty4Plugin(Settings settings, Path configPath) throws IOException {
            this.users = readUsers(configPath.resolve("users"));
        }

        private static Map<String, User> readUsers(Path file) throws IOException {
            Map<String, User> users = new HashMap<>();
            HexFormat hex = HexFormat.of();
            int n = 0;
            for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
                n++;
                if (line.isBlank() || line.startsWith("#")) {
                    continue;
                }
                String[] f = line.split(":", -1);
                if (f.length != 3 || f[0].isEmpty() || f[1].isEmpty() || f[2].length() != 64) {
                    throw new IllegalStateException(file + ":" + n + ": want name:salt:sha256hex");
                }
                users.put(f[0], new User(f[1].getBytes(StandardCharsets.UTF_8), hex.parseHex(f[2])));
            }
            if (users.isEmpty()) {
                throw new IllegalStateException(file + ": no users; the node would be open to anyone");
            }
            return Map.copyOf(users);
        }

        private static byte[] sha256(byte[] salt, byte[] password) {
            try {
                MessageDigest d = MessageDigest.getInstance("SHA-256");
                d.update(salt);
                d.update(password);
                return d.digest();
            } catch (NoSuchAlgorithmException e) {
                throw new IllegalStateException("SHA-256 is missing from this JVM", e);
            }
        }

        /** True when AUTHORIZATION is "Basic base64(name:password)" of a known user. */
        private boolean authenticated(String authorization) {
            if (authorization == null || !authorization.regionMatches(true, 0, "Basic ", 0, 6)) {
                return false;
            }
            byte[] decoded;
            try {
                decoded = Base64.getDecoder().decode(authorization.substring(6).trim());
            } catch (IllegalArgumentException e) {
                return false;
            }
            String pair = new String(decoded, StandardCharsets.UTF_8);
            int colon = pair.indexOf(':');
            if (colon < 0) {
                return false;
            }
            User u = users.getOrDefault(pair.substring(0, colon), nobody);
            byte[] got = sha256(u.salt(), pair.substring(colon + 1).getBytes(StandardCharsets.UTF_8));
            // Constant time: how much of the hash matched must not show in the answer's timing.
            return MessageDigest.isEqual(got, u.hash()) && u != nobody;
        }

        /** Sends the 401 and returns false unless CHANNEL's request carries valid credentials. */
        private boolean admit(RestChannel channel) {
            RestRequest request = channel.request();
            String header = request.header("Authorization");
            if (authenticated(header)) {
                return true;
            }
            String reason = header == null ? "authentication required" : "invalid username or password";
            // rawPath: path() decodes, and throws on a bad escape such as /%zz.
            LOG.debug("refused {} {}: {}", request.method(), request.rawPath(), reason);
            String body = String.format(Locale.ROOT,
                "{\"error\":{\"type\":\"security_exception\",\"reason\":\"%s\"},\"status\":401}",
                reason);
            BytesRestResponse r = new BytesRestResponse(RestStatus.UNAUTHORIZED,
                "application/json; charset=UTF-8", body.getBytes(StandardCharsets.UTF_8));
            r.addHeader("WWW-Authenticate", "Basic realm=\"opensearch\"");
            channel.sendResponse(r);
            return false;
        }

        @Override
        public Map<String, Supplier<HttpServerTransport>> getHttpTransports(Settings settings,
            ThreadPool threadPool, BigArrays bigArrays, PageCacheRecycler pageCacheRecycler,
            CircuitBreakerService circuitBreakerService, NamedXContentRegistry xContentRegistry,
            NetworkService networkService, HttpServerTransport.Dispatcher dispatcher,
            ClusterSettings clusterSettings, Tracer tracer) {
            HttpServerTransport.Dispatcher guarded = new HttpServerTransport.Dispatcher() {
                @Override
                public void dispatchRequest(RestRequest request, RestChannel channel,
                    ThreadContext threadContext) {
                    if (admit(channel)) {
                        dispatcher.dispatchRequest(request, channel, threadContext);
                    }
                }

                // Requests the transport could not parse (a bad URI encoding, say): the
                // dispatcher's error names what was wrong, so strangers get the 401 instead.
                @Override
                public void dispatchBadRequest(RestChannel channel, ThreadContext threadContext,
                    Throwable cause) {
                    if (admit(channel)) {
                        dispatcher.dispatchBadRequest(channel, threadContext, cause);
                    }
                }

                // Routing only, no response: nothing to guard.
                @Override
                public Optional<RestHandler> dispatchHandler(String uri, String rawPath,
                    RestRequest.Method method, Map<String, String> params) {
                    return dispatcher.dispatchHandler(uri, rawPath, method, params);
                }
            };
            return super.getHttpTransports(settings, threadPool, bigArrays, pageCacheRecycler,
                circuitBreakerService, xContentRegistry, networkService, guarded, clusterSettings,
                tracer);
        }
    }

    private static final class ClasspathPluginNode extends Node {
        ClasspathPluginNode(Environment env, Collection<Class<? extends Plugin>> plugins) {
            super(env, plugins, true);
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: EmbeddedOpenSearch <config dir with opensearch.yml>");
            System.exit(2);
        }
        Path configDir = Paths.get(args[0]).toAbsolutePath();
        // path.home must be known before opensearch.yml is read (the distribution passes it
        // the same way); the rest of the paths come from opensearch.yml.
        String home = System.getProperty("opensearch.path.home");
        if (home == null || home.isEmpty()) {
            System.err.println("EmbeddedOpenSearch: -Dopensearch.path.home is not set");
            System.exit(2);
        }
        Settings initial = Settings.builder().put("path.home", home).build();
        Environment env = InternalSettingsPreparer.prepareEnvironment(
            initial, Collections.emptyMap(), configDir, () -> "node-1");
        // Reads <config dir>/log4j2.properties, as the distribution does.
        LogConfigurator.registerErrorListener();
        LogConfigurator.setNodeName(Node.NODE_NAME_SETTING.get(env.settings()));
        LogConfigurator.configure(env);

        Node node = new ClasspathPluginNode(env, PLUGINS);
        CountDownLatch stopped = new CountDownLatch(1);
        // SIGTERM from `stop`: close the node cleanly (flushes translogs, releases the lock).
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                node.awaitClose(20, TimeUnit.SECONDS);
            } catch (Exception e) {
                e.printStackTrace();
            } finally {
                stopped.countDown();
            }
        }, "opensearch-shutdown"));
        try {
            node.start();
        } catch (Throwable t) {
            t.printStackTrace();
            System.exit(1);
        }
        // Node's threads are daemons: keep the JVM alive until the shutdown hook has run.
        stopped.await();
    }
}
