// A single OpenSearch node embedded in a plain JVM, for the local stack (deploy/local).
//
// The distribution's tarball is not on Maven Central, but the server jar and its modules are.
// Node's protected constructor takes plugin classes from the classpath, so the modules the
// platform needs run without a plugins/ or modules/ folder. All settings come from
// <config dir>/opensearch.yml, which deploy/local/engines/opensearch.sh writes.
//
// Usage: java -Dopensearch.path.home=DIR -cp 'lib/*:launcher' EmbeddedOpenSearch <config dir>

import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.opensearch.analysis.common.CommonAnalysisPlugin;
import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.index.mapper.MapperExtrasPlugin;
import org.opensearch.index.reindex.ReindexPlugin;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.painless.PainlessPlugin;
import org.opensearch.plugins.Plugin;
import org.opensearch.transport.Netty4Plugin;

public final class EmbeddedOpenSearch {

    private static final List<Class<? extends Plugin>> PLUGINS = List.of(
        Netty4Plugin.class,          // HTTP and transport
        CommonAnalysisPlugin.class,  // english/simple analyzers, token filters
        PainlessPlugin.class,        // scripts
        MapperExtrasPlugin.class,    // scaled_float, token_count, search_as_you_type
        ReindexPlugin.class          // _delete_by_query, _update_by_query, _reindex
    );

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
