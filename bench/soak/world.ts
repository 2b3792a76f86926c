/**
 * The soak's world: the real control plane, a real Backrest with real restic repositories on a rest-server,
 * a Backrest stand-in for the larger set, a recording proxy in front of each (every Binding names a proxy),
 * the operator's two replicas, the Lease history, and the writes that put units (Secret, VolSync object,
 * Binding) in place. Rules: every Secret value written is registered for the leak sweep, and contains a
 * UUID the sweep can find; the world is torn down by `close()` even when the run failed.
 */
import { type BackrestInstance, createResticRepo, startBackrest } from "../../tests/harness/backrest.ts";
import { type BackrestStandin, startBackrestStandin } from "../../tests/harness/backrest_standin.ts";
import type { ControlPlane } from "../../tests/harness/control_plane.ts";
import { binding, BINDINGS, cluster, putOperatorConfig, secret } from "../../tests/harness/operator.ts";
import { ANNOTATION_BINDING, DEFAULT_OPERATOR_CONFIG_NAME } from "../../lib/api/mod.ts";
import { LABEL_REPO_CLAIM } from "../../lib/reconcile/mod.ts";
import { kubeCall } from "./kube.ts";
import { LeaseHistory } from "./lease_history.ts";
import { type BackrestName, defaultId, Model, type Ns, type Unit, type UnitKind } from "./model.ts";
import { SocketOwners } from "./origin.ts";
import { type RecordingProxy, recordingProxy } from "./proxy.ts";
import { Replicas, SLOTS } from "./replicas.ts";

/** How many of what the world holds at the start (and keeps about that many of). */
export interface SoakSizes {
  /** Namespaces with hand-written Bindings. */
  handNamespaces: number;
  /** Units per hand namespace on the real Backrest (each a real restic repository). */
  realPerNamespace: number;
  /** Units per hand namespace on the stand-in. */
  standinPerNamespace: number;
  /** Namespaces whose VolSync objects get generated Bindings (on the stand-in, the default Backrest). */
  autoNamespaces: number;
  /** VolSync objects per auto namespace. */
  autoPerNamespace: number;
}

/** The leader-election Lease main.ts uses. */
export const LEADER_LEASE = "backrest-volsync-operator.backrest.garethgeorge.com";
/** The OperatorConfig's name (main.ts's default). */
export const CONFIG_NAME = DEFAULT_OPERATOR_CONFIG_NAME;
/** Label on every Secret of the soak, so the checker lists them in one call. */
export const SECRET_LABEL = "soak.backrest-volsync.test/secret";
/** The annotation that opts a VolSync object in or out of generation. */
export const OPT_IN = ANNOTATION_BINDING;
/** The claim Leases' label. */
export const CLAIM_LABEL = LABEL_REPO_CLAIM;
/** The Backrest resync period of the soak's OperatorConfig: how soon a wiped Backrest is noticed. */
export const RESYNC_PERIOD = "30s";

/** Every Secret value the soak wrote, by the UUID each one contains. */
export class SecretValues {
  readonly #byUuid = new Map<string, string>();
  readonly #values = new Set<string>();

  /** Registers `value` (it must contain a UUID) as the `what` of a Secret. */
  add(value: string, what: string): string {
    const uuid = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/.exec(value)?.[0];
    if (!uuid) throw new Error(`a Secret value of the soak must contain a UUID (${what})`);
    this.#byUuid.set(uuid, what);
    this.#values.add(value);
    return value;
  }

  /** What the value holding `uuid` was, if it is one of ours. */
  whose(uuid: string): string | undefined {
    return this.#byUuid.get(uuid);
  }

  /** Every value. */
  values(): string[] {
    return [...this.#values];
  }

  get size(): number {
    return this.#values.size;
  }
}

/** Real restic repositories made ahead of need (each `restic init` takes about a second). */
class ResticPool {
  readonly #spare: Promise<{ uri: string; password: string }>[] = [];
  #chain: Promise<unknown> = Promise.resolve();

  constructor(readonly size: number) {
    for (let i = 0; i < size; i++) this.#refill();
  }

  #refill(): void {
    const made = this.#chain.then(() => createResticRepo(`pw-${crypto.randomUUID()}`));
    this.#chain = made.catch(() => {});
    this.#spare.push(made);
  }

  /** A fresh, initialized repository on the rest-server. */
  take(): Promise<{ uri: string; password: string }> {
    this.#refill();
    return this.#spare.shift()!;
  }
}

/** Everything the soak drives and watches. */
export interface World {
  readonly cp: ControlPlane;
  /** The operator's namespace: OperatorConfig, Leases, ServiceAccounts. */
  readonly cfgNs: string;
  readonly real: BackrestInstance;
  readonly standin: BackrestStandin;
  readonly proxies: Record<BackrestName, RecordingProxy>;
  readonly replicas: Replicas;
  readonly lease: LeaseHistory;
  readonly model: Model;
  readonly secrets: SecretValues;
  readonly sizes: SoakSizes;
  /** A fresh real repository, or a stand-in location, with a new password. */
  location(backrest: BackrestName, what: string): Promise<{ uri: string; password: string }>;
  /** Writes a unit's Secret (create or replace). */
  writeSecret(unit: Unit, data: Record<string, string>): Promise<void>;
  /** Creates a unit's VolSync object. */
  createVolSync(unit: Unit): Promise<void>;
  /** Creates the unit's Binding as the model has it. */
  createBinding(unit: Unit): Promise<void>;
  /** A new namespace of `role` with its units (and their Bindings), added to the model. */
  addNamespace(role: Ns["role"]): Promise<Ns>;
  /** A new unit in `ns` (hand: on `backrest`, with a Binding), added to the model. */
  addUnit(ns: Ns, backrest: BackrestName, kind: UnitKind, withBinding: boolean): Promise<Unit>;
  say(msg: string): void;
  close(): Promise<void>;
}

/** Options of {@linkcode startWorld}. */
export interface WorldOptions {
  sizes: SoakSizes;
  say: (msg: string) => void;
  /** Extra flags for every replica (log level). */
  replicaArgs: string[];
}

/** Builds the world and its initial population; the replicas start last, on a populated cluster. */
export async function startWorld(o: WorldOptions): Promise<World> {
  const cp = await cluster();
  const cfgNs = await cp.namespace("soak-cfg");
  const [real, pool] = [await startBackrest(), new ResticPool(3)];
  const standin = startBackrestStandin({ instance: "soak-standin" });
  const replicas = new Replicas({
    configNamespace: cfgNs,
    args: o.replicaArgs,
    restartDelayMs: 2000,
    say: o.say,
  });
  const owners = new SocketOwners(() => replicas.pids());
  const proxies: Record<BackrestName, RecordingProxy> = {
    real: recordingProxy("real", real.url, owners),
    standin: recordingProxy("standin", standin.url, owners),
  };
  const model = new Model();
  const secrets = new SecretValues();
  const lease = new LeaseHistory(cp, cfgNs, LEADER_LEASE);

  const location = async (backrest: BackrestName, what: string) => {
    if (backrest === "real") {
      const repo = await pool.take();
      secrets.add(repo.uri, `${what} RESTIC_REPOSITORY`);
      secrets.add(repo.password, `${what} RESTIC_PASSWORD`);
      return repo;
    }
    return {
      uri: secrets.add(`rest:https://storage.example/${crypto.randomUUID()}`, `${what} RESTIC_REPOSITORY`),
      password: secrets.add(`pw-${crypto.randomUUID()}`, `${what} RESTIC_PASSWORD`),
    };
  };

  const writeSecret = async (unit: Unit, data: Record<string, string>) => {
    const obj = secret(unit.secret, data);
    (obj.metadata as Record<string, unknown>).labels = { [SECRET_LABEL]: "true" };
    const path = `/api/v1/namespaces/${unit.ns.name}/secrets`;
    const made = await kubeCall(cp, "POST", path, obj, { ok: [409] });
    if (made.status === 409) {
      await kubeCall(cp, "PUT", `${path}/${unit.secret}`, obj);
    }
  };

  const createVolSync = async (unit: Unit) => {
    const annotations: Record<string, string> = unit.ns.role === "hand"
      ? { [OPT_IN]: "false" }
      : unit.annotation === undefined
      ? {}
      : { [OPT_IN]: unit.annotation };
    const obj = unit.kind === "ReplicationSource"
      ? {
        apiVersion: "volsync.backube/v1alpha1",
        kind: "ReplicationSource",
        metadata: { name: unit.source, annotations },
        spec: {
          sourcePVC: "data",
          trigger: { schedule: "0 * * * *" },
          restic: { repository: unit.secret, copyMethod: "Clone" },
        },
      }
      : {
        apiVersion: "volsync.backube/v1alpha1",
        kind: "ReplicationDestination",
        metadata: { name: unit.source, annotations },
        spec: {
          trigger: { manual: "once" },
          restic: {
            repository: unit.secret,
            copyMethod: "Snapshot",
            accessModes: ["ReadWriteOnce"],
            capacity: "1Gi",
          },
        },
      };
    const plural = unit.kind === "ReplicationSource" ? "replicationsources" : "replicationdestinations";
    await kubeCall(
      cp,
      "POST",
      `/apis/volsync.backube/v1alpha1/namespaces/${unit.ns.name}/${plural}`,
      obj,
      { ok: [409] },
    );
  };

  const createBinding = async (unit: Unit) => {
    const b = unit.binding;
    if (!b) return;
    const repo = { ...b.settings, ...(b.idOverride !== "" ? { idOverride: b.idOverride } : {}) };
    const obj = binding(b.name, {
      url: proxies[unit.backrest].url,
      kind: unit.kind,
      source: unit.source,
      ...(Object.keys(repo).length > 0 ? { repo } : {}),
      deletionPolicy: b.deletionPolicy,
    });
    await kubeCall(cp, "POST", `${BINDINGS}/namespaces/${unit.ns.name}/backrestvolsyncbindings`, obj, {
      ok: [409],
    });
  };

  const addUnit = async (ns: Ns, backrest: BackrestName, kind: UnitKind, withBinding: boolean) => {
    const n = model.nextUnit();
    const unit: Unit = {
      n,
      ns,
      kind,
      source: `${kind === "ReplicationSource" ? "rs" : "rd"}-${n}`,
      secret: `restic-${n}`,
      backrest,
      binding: undefined,
      bindings: 0,
      annotation: ns.role === "auto" ? "true" : undefined,
    };
    if (withBinding && ns.role === "hand") {
      unit.binding = {
        name: `b-${n}-${unit.bindings++}`,
        idOverride: "",
        deletionPolicy: "Retain",
        settings: {},
      };
    }
    ns.units.push(unit);
    model.ledgers[backrest].take(defaultId(ns.name, kind, unit.source));
    const what = `${ns.name}/${unit.secret}`;
    const loc = await location(backrest, what);
    await writeSecret(unit, {
      RESTIC_REPOSITORY: loc.uri,
      RESTIC_PASSWORD: loc.password,
      AWS_ACCESS_KEY_ID: secrets.add(`akid-${crypto.randomUUID()}`, `${what} AWS_ACCESS_KEY_ID`),
    });
    await createVolSync(unit);
    await createBinding(unit);
    return unit;
  };

  const addNamespace = async (role: Ns["role"]) => {
    const name = await cp.namespace(role === "hand" ? "soak-hand" : "soak-auto");
    const ns: Ns = { n: model.namespaces.length, name, role, units: [], deleted: false };
    model.namespaces.push(ns);
    const s = o.sizes;
    if (role === "hand") {
      for (let i = 0; i < s.realPerNamespace; i++) await addUnit(ns, "real", "ReplicationSource", true);
      for (let i = 0; i < s.standinPerNamespace; i++) {
        // Every fourth a ReplicationDestination: both kinds are bound the same way.
        await addUnit(ns, "standin", i % 4 === 3 ? "ReplicationDestination" : "ReplicationSource", true);
      }
    } else {
      for (let i = 0; i < s.autoPerNamespace; i++) {
        await addUnit(ns, "standin", i % 4 === 3 ? "ReplicationDestination" : "ReplicationSource", false);
      }
    }
    return ns;
  };

  const world: World = {
    cp,
    cfgNs,
    real,
    standin,
    proxies,
    replicas,
    lease,
    model,
    secrets,
    sizes: o.sizes,
    location,
    writeSecret,
    createVolSync,
    createBinding,
    addNamespace,
    addUnit,
    say: o.say,
    async close() {
      const dump = Deno.env.get("SOAK_DUMP_CALLS");
      if (dump) {
        const rows = Object.values(proxies).flatMap((p) => p.calls.map((c) => ({ proxy: p.name, ...c })));
        await Deno.writeTextFile(dump, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
      }
      await lease.stop();
      await replicas.stop().catch(() => {});
      for (const p of Object.values(proxies)) await p.close().catch(() => {});
      await standin.stop().catch(() => {});
      await real.stop().catch(() => {});
    },
  };

  try {
    await putOperatorConfig(cfgNs, {
      paused: false,
      resyncPeriod: RESYNC_PERIOD,
      defaultBackrest: { url: proxies.standin.url },
      bindingGeneration: { policy: "Annotated", defaultRepo: {} },
    }, CONFIG_NAME);
    for (let i = 0; i < o.sizes.handNamespaces; i++) await world.addNamespace("hand");
    for (let i = 0; i < o.sizes.autoNamespaces; i++) await world.addNamespace("auto");
    lease.start();
    await Promise.all(SLOTS.map((slot) => replicas.start(slot)));
  } catch (e) {
    await world.close();
    throw e;
  }
  return world;
}
