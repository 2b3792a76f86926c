/**
 * Entry point: flags -> options -> clients -> operator; waits for SIGTERM/SIGINT. The only place that
 * exits: 0 after a clean shutdown, 1 on a fatal error (lost leadership included), 2 on bad flags.
 */
import { connect, createClient } from "./lib/kube/mod.ts";
import { createLogger, createRuntimeMetrics, errorText, ObserveServer } from "./lib/observe/mod.ts";
import { OptionsError, parseOptions, usage } from "./lib/options.ts";
import { createOperator } from "./lib/reconcile/mod.ts";
import { VERSION } from "./lib/version.ts";

/** How long a shutdown may take before the process exits anyway (below the default 30 s grace period). */
const SHUTDOWN_BOUND_MS = 25_000;

function fail(message: string, code: number): never {
  // deno-lint-ignore no-console -- the one place that talks to a terminal before the logger exists
  console.error(`backrest-volsync-operator: ${message}`);
  Deno.exit(code);
}

async function main(args: string[]): Promise<number> {
  let options;
  try {
    options = parseOptions(args);
  } catch (e) {
    if (e instanceof OptionsError) fail(e.message, 2);
    throw e;
  }
  if (options.help) {
    // deno-lint-ignore no-console
    console.log(usage());
    return 0;
  }
  if (options.version) {
    // deno-lint-ignore no-console
    console.log(VERSION);
    return 0;
  }
  const log = createLogger({ level: options.logLevel, format: options.logFormat });
  const connection = await connect({
    ...(options.kubeconfig ? { path: options.kubeconfig } : {}),
    ...(options.context ? { context: options.context } : {}),
  });
  // The one permission set lets the binary start programs for kubeconfig credential plugins only; in a
  // pod, or with a certificate or token user, that right is dropped before anything is read from the
  // cluster.
  if (!connection.runsPrograms) Deno.permissions.revokeSync({ name: "run" });
  const kube = createClient(connection, { userAgent: `backrest-volsync-operator/${VERSION}` });
  const configNamespace = options.operatorConfigNamespace ?? connection.namespace ??
    Deno.env.get("POD_NAMESPACE") ?? "default";
  const metrics = createRuntimeMetrics();
  const stop = new AbortController();
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(signal, () => {
      if (stop.signal.aborted) return;
      log.info("Shutting down", { signal });
      stop.abort();
      // In-flight reconciles get a bounded drain; should anything still hang, leave before the kubelet's
      // SIGKILL (30 s grace by default) so the exit is ours and logged. The Lease then simply expires.
      setTimeout(() => {
        log.error(
          "Shutdown did not finish in time; exiting",
          new Error(`still running after ${SHUTDOWN_BOUND_MS} ms`),
        );
        Deno.exit(1);
      }, SHUTDOWN_BOUND_MS);
    });
  }
  let identity = Deno.env.get("POD_NAME") ?? "";
  if (!identity) {
    try {
      identity = Deno.hostname();
    } catch {
      identity = "backrest-volsync-operator";
    }
  }
  identity = `${identity}_${crypto.randomUUID()}`;
  // The server is built first so its probes can ask the manager, which is built next.
  let ready = () => false;
  let healthy = () => true;
  const server = new ObserveServer({
    metricsAddress: options.metricsBindAddress,
    probeAddress: options.healthProbeBindAddress,
    registry: metrics.registry,
    ready: () => ready(),
    healthy: () => healthy(),
    logger: log.named("observe"),
  });
  server.listen();
  const operator = createOperator({
    kube,
    namespaces: options.namespaces,
    configNamespace,
    configName: options.operatorConfigName,
    concurrency: options.concurrency,
    logger: log,
    metrics,
    runnables: [server],
    ...(options.leaderElect
      ? {
        leaderElection: {
          namespace: options.leaderElectionNamespace ?? configNamespace,
          name: options.leaderElectionId,
          identity,
        },
      }
      : {}),
  });
  ready = () => operator.manager.ready();
  healthy = () => operator.manager.healthy();
  log.info("Starting backrest-volsync-operator", {
    version: VERSION,
    server: connection.server,
    namespaces: options.namespaces.length ? options.namespaces.join(",") : "all",
    operatorConfig: `${configNamespace}/${options.operatorConfigName}`,
    leaderElection: options.leaderElect,
  });
  try {
    await operator.manager.start(stop.signal);
  } catch (e) {
    log.error("Operator stopped on an error", e);
    return 1;
  } finally {
    connection.close();
  }
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    fail(errorText(e), 1);
  }
}
