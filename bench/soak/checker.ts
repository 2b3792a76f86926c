/**
 * The invariant checker. Its state check compares the whole system with what it should be, derived from
 * the apiserver (Bindings, Secrets, VolSync objects, the OperatorConfig, claims) and, for what the
 * apiserver no longer shows, from the driver's ledger of deletions and moves:
 * - each Backrest holds exactly the repos the Bindings and Secrets say (id, URI, password, env with the
 *   masks the operator sends, flags, autoUnlock, the four policies), each id once, none left that a
 *   Binding deleted with Remove held, none the soak never named (an orphan), and every repo a Binding left
 *   behind (deleted with Retain, moved to another id, no longer generated) still there;
 * - every Binding whose inputs are valid and that nothing blocks is Ready, and its status tells the truth
 *   (id, Backrest URL, generation); a blocked one says why (paused, URL not allowed, location refused); none
 *   is stuck deleting, but one with Remove whose Backrest the allowlist refuses waits (RemoveFailed); an
 *   object whose namespace is gone (left in storage by Kubernetes) is listed apart, not judged;
 * - generated Bindings exist exactly for the eligible VolSync objects, with the config's defaults;
 * - every claim's holder exists, and every Ready Binding holds the claim of its id and no other;
 * - a live replica holds the leader Lease, the OperatorConfig is accepted, deleted namespaces are gone;
 * - (once converged) no replica's work queues hold more keys than there are objects to reconcile.
 * Its history check reads the proxies' logs: every Backrest call came from a replica holding the Lease at
 * the time (within the Lease polling's tolerance), none while paused (after a grace for the watch), none
 * to a Backrest the allowlist refused. Its leak sweep looks for every Secret value (and its base64) in
 * every replica's output, the live replicas' /metrics, every status and every Event.
 * Rule: a problem names objects, fields and keys, never a Secret value.
 */
import { fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import {
  CheckPolicySchema,
  CommandPrefixSchema,
  ForgetPolicySchema,
  PrunePolicySchema,
  type Repo,
  RepoSchema,
} from "../../gen/v1/config_pb.ts";
import { restEnv } from "../../tests/harness/backrest.ts";
import { BINDINGS } from "../../tests/harness/operator.ts";
import { kubeCall, kubeList } from "./kube.ts";
import type { LeaseHistory } from "./lease_history.ts";
import { type BackrestName, defaultId, type UnitKind } from "./model.ts";
import { CLAIM_LABEL, CONFIG_NAME, OPT_IN, SECRET_LABEL, type World } from "./world.ts";

type Json = Record<string, unknown>;

const obj = (v: unknown): Json => (v !== null && typeof v === "object" && !Array.isArray(v) ? v as Json : {});
const str = (v: unknown): string => (typeof v === "string" ? v : "");
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x) => typeof x === "string") : []);

/** JSON with sorted keys, for comparing parsed structures. */
function stable(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stable).join(",")}]`;
  if (v !== null && typeof v === "object") {
    return `{${
      Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${stable((v as Json)[k])}`).join(",")
    }}`;
  }
  return JSON.stringify(v);
}

const POLICIES = {
  prunePolicy: PrunePolicySchema,
  checkPolicy: CheckPolicySchema,
  forgetPolicy: ForgetPolicySchema,
  commandPrefix: CommandPrefixSchema,
} as const;

/** A policy as Backrest's proto3 JSON prints it (defaults left out), or undefined when not set. */
function policyJson(key: keyof typeof POLICIES, v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  // deno-lint-ignore no-explicit-any -- one of four schemas, each used with its own message
  const schema = POLICIES[key] as any;
  return stable(toJson(schema, fromJson(schema, v as JsonValue)));
}

/** Canonical URL of a Backrest base URL the soak uses (no path): what status.backrestURL holds. */
function canonical(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.hostname}:${u.port || (u.protocol === "https:" ? "443" : "80")}`;
  } catch {
    return url;
  }
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;
const BASE64 = /[A-Za-z0-9+/]{24,}={0,2}/g;

/** A config spell that closes the way to Backrest: from `on` (acknowledged) to `off` (written). */
export interface Spell {
  kind: "pause" | "allowlist";
  on: number;
  off: number | undefined;
}

/** Options of {@linkcode Checker}. */
export interface CheckerOptions {
  /** How long after a pause (or a tighter allowlist) was acknowledged a call may still arrive. */
  graceMs: number;
  /** The Lease polling's tolerance (its interval plus a request). */
  leaseToleranceMs: number;
}

/** A history finding, with the time of the offending call. */
export interface Finding {
  at: number;
  what: string;
}

/** Reads the world and tells what is wrong with it. */
export class Checker {
  readonly #w: World;
  readonly #o: CheckerOptions;
  /** How far each proxy's calls have been checked. */
  readonly #checked: Record<BackrestName, number> = { real: 0, standin: 0 };
  /** How far each replica's log has been swept (by log path). */
  readonly #swept = new Map<string, number>();
  readonly spells: Spell[] = [];
  /** Bindings and VolSync objects Kubernetes left in storage after their namespace went (namespace/name). */
  readonly leftInStorage = new Set<string>();
  /** Calls checked so far, by proxy. */
  readonly callsChecked: Record<BackrestName, number> = { real: 0, standin: 0 };

  constructor(world: World, options: CheckerOptions) {
    this.#w = world;
    this.#o = options;
  }

  /** Which Backrest a Binding's URL names (through its proxy). */
  #backrestOf(url: string): BackrestName | undefined {
    const c = canonical(url);
    if (c === canonical(this.#w.proxies.real.url)) return "real";
    if (c === canonical(this.#w.proxies.standin.url)) return "standin";
    return undefined;
  }

  /** What each Backrest holds now: repos by id (a list, to see duplicates). */
  async #held(): Promise<Record<BackrestName, Map<string, Repo[]>>> {
    const byId = (repos: Iterable<Repo>) => {
      const m = new Map<string, Repo[]>();
      for (const r of repos) m.set(r.id, [...m.get(r.id) ?? [], r]);
      return m;
    };
    return {
      real: byId((await this.#w.real.getConfig()).repos),
      standin: byId(this.#w.standin.repos.values()),
    };
  }

  /** The state invariants; an empty list means the world is as it should be. */
  async state(): Promise<string[]> {
    const w = this.#w;
    const cp = w.cp;
    const problems: string[] = [];
    const [configAnswer, bindings, sources, dests, secrets, namespaces, claims, held] = await Promise.all([
      kubeCall(cp, "GET", `${BINDINGS}/namespaces/${w.cfgNs}/backrestvolsyncoperatorconfigs/${CONFIG_NAME}`),
      kubeList(cp, `${BINDINGS}/backrestvolsyncbindings`),
      kubeList(cp, "/apis/volsync.backube/v1alpha1/replicationsources"),
      kubeList(cp, "/apis/volsync.backube/v1alpha1/replicationdestinations"),
      kubeList(cp, `/api/v1/secrets?labelSelector=${encodeURIComponent(`${SECRET_LABEL}=true`)}`),
      kubeList(cp, "/api/v1/namespaces"),
      kubeList(
        cp,
        `/apis/coordination.k8s.io/v1/namespaces/${w.cfgNs}/leases?labelSelector=${
          encodeURIComponent(`${CLAIM_LABEL}=true`)
        }`,
      ),
      this.#held(),
    ]);

    // The OperatorConfig: accepted, and what it says.
    const config = obj(configAnswer.body);
    const spec = obj(config.spec);
    const cfgReady = (obj(config.status).conditions as Json[] | undefined ?? []).find((c) =>
      c.type === "Ready"
    );
    if (
      cfgReady?.status !== "True" || obj(config.status).observedGeneration !== obj(config.metadata).generation
    ) {
      problems.push(`OperatorConfig not accepted at its generation: ${str(cfgReady?.reason)}`);
    }
    const paused = spec.paused === true;
    const allowlist = strings(spec.backrestURLAllowlist).map(canonical);
    const allowLocal = obj(spec.repositoryPolicy).allowLocalAddresses === true;
    const generation = obj(spec.bindingGeneration);
    const policy = str(generation.policy) || "Disabled";
    const defaultURL = str(obj(spec.defaultBackrest).url);
    const defaultRepo = obj(generation.defaultRepo);

    // A live replica leads (the Lease seen held by it within the last two polling seconds).
    const holder = w.lease.runs.at(-1);
    const leader = holder && w.replicas.live().find((i) => holder.holder.startsWith(i.identityPrefix));
    if (!leader || Date.now() - holder!.to > 2000) {
      problems.push(`no live replica leads (Lease last seen held by ${holder?.holder || "nobody"})`);
    }

    const key = (o: Json) => `${str(obj(o.metadata).namespace)}/${str(obj(o.metadata).name)}`;
    // Objects whose namespace is gone: the namespace controller finalized it while it could not discover
    // their resource (right after an apiserver restart, custom resources come back seconds after the rest),
    // so Kubernetes left them in storage. Nothing can be written for them; the checker lists them apart.
    const present = new Set(namespaces.map((n) => str(obj(n.metadata).name)));
    const gone = (o: Json) => !present.has(str(obj(o.metadata).namespace));
    for (const o of [...bindings, ...sources, ...dests].filter(gone)) this.leftInStorage.add(key(o));
    const volsync = new Map<string, Json>();
    for (const o of sources.filter((o) => !gone(o))) {
      volsync.set(`${str(obj(o.metadata).namespace)}/ReplicationSource/${str(obj(o.metadata).name)}`, o);
    }
    for (const o of dests.filter((o) => !gone(o))) {
      volsync.set(`${str(obj(o.metadata).namespace)}/ReplicationDestination/${str(obj(o.metadata).name)}`, o);
    }
    const secretData = new Map(secrets.map((s) => [key(s), obj(s.data)]));
    const dec = (v: unknown) => {
      try {
        return new TextDecoder().decode(Uint8Array.from(atob(str(v)), (c) => c.charCodeAt(0)));
      } catch {
        return "";
      }
    };

    /** Namespaces holding a Binding whose deletion waits for the allowlist or a resume. */
    const deleting = new Set<string>();
    const required: Record<BackrestName, Map<string, string>> = { real: new Map(), standin: new Map() };
    const blocked: Record<BackrestName, Set<string>> = { real: new Set(), standin: new Set() };
    const applied = new Map<string, string>(); // Binding key -> id, for the claims

    for (const b of bindings) {
      const meta = obj(b.metadata);
      const bkey = key(b);
      const bspec = obj(b.spec);
      const status = obj(b.status);
      const url = str(obj(bspec.backrest).url);
      const backrest = this.#backrestOf(url);
      if (!backrest) {
        problems.push(`Binding ${bkey} names a Backrest the soak does not run`);
        continue;
      }
      const ready = (status.conditions as Json[] | undefined ?? []).find((c) => c.type === "Ready");
      if (gone(b)) {
        // Its repo may stay where Kubernetes never deleted it, or where its removal waits for the config;
        // otherwise the ledger's expectations stand (a Remove repo goes, a Retain repo stays).
        const refused = allowlist.length > 0 && !allowlist.includes(canonical(url));
        if (!meta.deletionTimestamp || (bspec.deletionPolicy === "Remove" && (refused || paused))) {
          blocked[backrest].add(str(status.repoId));
        }
        continue;
      }
      if (meta.deletionTimestamp) {
        // Its repo is removed only where the allowlist admits (and not while paused): until then it waits.
        const refused = allowlist.length > 0 && !allowlist.includes(canonical(url));
        if (bspec.deletionPolicy === "Remove" && (refused || paused)) {
          blocked[backrest].add(str(status.repoId));
          deleting.add(str(meta.namespace));
          if (ready?.reason !== (paused ? "Paused" : "RemoveFailed")) {
            problems.push(`Binding ${bkey} is being deleted, says ${str(ready?.reason) || "nothing"}`);
          }
        } else {
          problems.push(
            `Binding ${bkey} still being deleted (${bspec.deletionPolicy}): ${str(ready?.reason)}: ${
              str(ready?.message).slice(0, 200)
            }`,
          );
        }
        continue;
      }
      const source = obj(bspec.source);
      const kind = str(source.kind) as UnitKind;
      const repo = obj(bspec.repo);
      const ns = str(meta.namespace);
      const id = str(repo.idOverride) || defaultId(ns, kind, str(source.name));
      const vs = volsync.get(`${ns}/${kind}/${str(source.name)}`);
      const secretName = str(obj(obj(vs?.spec).restic).repository);
      const data = secretData.get(`${ns}/${secretName}`);
      const uri = data ? dec(data.RESTIC_REPOSITORY) : "";
      const expected = paused
        ? "Paused"
        : allowlist.length > 0 && !allowlist.includes(canonical(url))
        ? "BackrestURLNotAllowed"
        : !vs
        ? "VolSyncNotFound"
        : !data
        ? "RepositorySecretNotFound"
        : !allowLocal && /^rest:https?:\/\/(127\.|localhost)/.test(uri)
        ? "RepositoryLocationNotAllowed"
        : "Applied";
      if (expected !== "Applied") {
        blocked[backrest].add(id);
        if (ready?.reason !== expected) {
          problems.push(`Binding ${bkey} says ${str(ready?.reason) || "nothing"}, expected ${expected}`);
        }
        continue;
      }
      if (ready?.status !== "True" || ready.reason !== "Applied") {
        problems.push(
          `Binding ${bkey} not Ready: ${str(ready?.reason) || "no condition"}: ${
            str(ready?.message).slice(0, 200)
          }`,
        );
        continue;
      }
      if (status.observedGeneration !== meta.generation) {
        problems.push(
          `Binding ${bkey} Ready for generation ${status.observedGeneration}, not ${meta.generation}`,
        );
      }
      if (status.repoId !== id) problems.push(`Binding ${bkey} status.repoId is not ${id}`);
      if (str(status.backrestURL) !== canonical(url)) {
        problems.push(
          `Binding ${bkey} status.backrestURL is ${str(status.backrestURL)}, not ${canonical(url)}`,
        );
      }
      const other = required[backrest].get(id);
      if (other) problems.push(`Bindings ${other} and ${bkey} are both Ready with id ${id}`);
      required[backrest].set(id, bkey);
      applied.set(bkey, id);
      const stored = held[backrest].get(id);
      if (!stored) {
        problems.push(`${backrest} Backrest lacks ${id} of Ready Binding ${bkey}`);
        continue;
      }
      // What the Binding and its Secret say Backrest holds.
      const allow = strings(repo.envAllowlist);
      const given = Object.keys(data!).filter((k) =>
        k !== "RESTIC_REPOSITORY" && k !== "RESTIC_PASSWORD" && (allow.length === 0 || allow.includes(k))
      ).sort().map((k) => `${k}=${dec(data![k])}`);
      const got = toJson(RepoSchema, stored[0]!) as Json;
      const differs: string[] = [];
      if (got.uri !== uri) differs.push("uri");
      if (got.password !== dec(data!.RESTIC_PASSWORD)) differs.push("password");
      const env = restEnv(...given);
      const gotEnv = strings(got.env).sort();
      if (stable(gotEnv) !== stable(env)) {
        differs.push(
          `env (keys ${gotEnv.map((e) => e.split("=")[0]).join(",")} against ${
            env.map((e) => e.split("=")[0]).join(",")
          }, or a value)`,
        );
      }
      if (stable(strings(got.flags)) !== stable(strings(repo.extraFlags).sort())) {
        differs.push(`flags ${stable(got.flags ?? [])}`);
      }
      if ((got.autoUnlock === true) !== (repo.autoUnlock === true)) differs.push("autoUnlock");
      for (const p of Object.keys(POLICIES) as (keyof typeof POLICIES)[]) {
        const want = policyJson(p, repo[p]);
        const have = got[p] === undefined ? undefined : stable(got[p]);
        if (want !== have) differs.push(p);
      }
      if (differs.length > 0) {
        problems.push(`${backrest} Backrest's ${id} (${bkey}) differs: ${differs.join("; ")}`);
      }
    }

    // Namespaces the driver deleted are gone, unless a Binding in them waits to remove its repo.
    for (const ns of w.model.namespaces) {
      if (ns.deleted && present.has(ns.name) && !deleting.has(ns.name)) {
        problems.push(`namespace ${ns.name} still being deleted`);
      }
    }

    // Generated Bindings exist exactly for the eligible VolSync objects, with the config's defaults.
    const eligible = new Set<string>();
    if (!paused && policy !== "Disabled" && defaultURL !== "") {
      for (const [vkey, vs] of volsync) {
        const raw = str(obj(obj(vs.metadata).annotations)[OPT_IN]).trim().toLowerCase();
        if (raw === "false" || raw === "0" || raw === "no") continue;
        if (policy !== "All" && !(raw === "true" || raw === "1" || raw === "yes")) continue;
        const [ns, kind, name] = vkey.split("/") as [string, string, string];
        eligible.add(`${ns}/${kind === "ReplicationSource" ? "bvsb-rs-" : "bvsb-rd-"}${name}`);
      }
    }
    const managed = bindings.filter((b) =>
      !gone(b) && obj(obj(b.metadata).labels)["backrest.garethgeorge.com/managed"] === "true"
    );
    const managedKeys = new Set(managed.map(key));
    for (const e of eligible) if (!managedKeys.has(e)) problems.push(`generated Binding ${e} missing`);
    for (const b of managed) {
      const bkey = key(b);
      if (!eligible.has(bkey)) {
        problems.push(`generated Binding ${bkey} exists, but its object is not eligible`);
        continue;
      }
      const bspec = obj(b.spec);
      const repo = obj(bspec.repo);
      if (
        str(obj(bspec.backrest).url) !== defaultURL || bspec.deletionPolicy !== "Retain" ||
        (repo.autoUnlock === true) !== (defaultRepo.autoUnlock === true) ||
        stable(strings(repo.extraFlags)) !== stable(strings(defaultRepo.extraFlags))
      ) problems.push(`generated Binding ${bkey} does not carry the config's defaults`);
    }

    // Backrest: each id once; nothing removed that must stay, nothing left that must go, no orphan.
    for (const name of ["real", "standin"] as const) {
      const ledger = w.model.ledgers[name];
      for (const [id, repos] of held[name]) {
        if (repos.length > 1) problems.push(`${name} Backrest holds ${id} ${repos.length} times`);
        if (required[name].has(id) || blocked[name].has(id)) continue;
        if (ledger.mustBeGone.has(id)) {
          problems.push(`${name} Backrest still holds ${id}, whose Binding was deleted with Remove`);
        } else if (!ledger.known.has(id)) {
          problems.push(`${name} Backrest holds ${id}, which no Binding of the soak ever named (orphan)`);
        }
      }
      for (const id of ledger.mustRemain) {
        if (!held[name].has(id)) {
          problems.push(`${name} Backrest lost ${id}, which a Binding left behind (Retain or moved)`);
        }
      }
    }

    // Claims: held by live Bindings; each Ready Binding holds exactly the claim of its id.
    const live = new Set(bindings.map(key));
    const byHolder = new Map<string, string[]>();
    for (const c of claims) {
      const holder = str(obj(c.spec).holderIdentity);
      const id = str(obj(obj(c.metadata).annotations)["backrest.garethgeorge.com/repo-id"]);
      if (!live.has(holder)) problems.push(`claim of ${id} held by ${holder}, which no longer exists`);
      byHolder.set(holder, [...byHolder.get(holder) ?? [], id]);
    }
    for (const [bkey, id] of applied) {
      const ids = byHolder.get(bkey) ?? [];
      if (ids.length !== 1 || ids[0] !== id) {
        problems.push(`Binding ${bkey} holds claims [${ids.join(", ")}], not [${id}]`);
      }
    }
    return problems;
  }

  /**
   * Work queues hold keys of objects that exist: no replica's queues (summed over its controllers) may hold
   * more keys than there are Bindings, VolSync objects and OperatorConfigs (every key names one), or they
   * keep keys of objects long gone and grow with churn.
   */
  async queues(): Promise<string[]> {
    const w = this.#w;
    const counts = await Promise.all([
      `${BINDINGS}/backrestvolsyncbindings`,
      `${BINDINGS}/backrestvolsyncoperatorconfigs`,
      "/apis/volsync.backube/v1alpha1/replicationsources",
      "/apis/volsync.backube/v1alpha1/replicationdestinations",
    ].map(async (path) => (await kubeList(w.cp, path)).length));
    const objects = counts.reduce((a, b) => a + b, 0);
    const problems: string[] = [];
    for (const inc of w.replicas.live()) {
      let depth = 0;
      try {
        const res = await fetch(`${inc.metricsUrl}/metrics`, { signal: AbortSignal.timeout(5000) });
        for (const m of (await res.text()).matchAll(/^workqueue_depth\{[^}]*\} (\d+)$/gm)) {
          depth += Number(m[1]);
        }
      } catch {
        continue; // restarting
      }
      if (depth > objects) {
        const role = w.lease.current().startsWith(inc.identityPrefix) ? "leader" : "follower";
        problems.push(
          `${inc.identityPrefix} (${role}) holds ${depth} keys in its work queues, more than the ${objects} ` +
            "Bindings, VolSync objects and OperatorConfigs there are",
        );
      }
    }
    return problems;
  }

  /** Marks a spell's start or end. */
  spell(kind: Spell["kind"], state: "on" | "off", at: number): void {
    if (state === "on") this.spells.push({ kind, on: at, off: undefined });
    else {
      for (const s of this.spells) if (s.kind === kind && s.off === undefined) s.off = at;
    }
  }

  /**
   * The calls that arrived since the last history check and at least `settleMs` ago (so the Lease polls
   * around them exist), judged by origin, leadership and spells.
   */
  history(lease: LeaseHistory, settleMs = 2000): Finding[] {
    const findings: Finding[] = [];
    const until = Date.now() - settleMs;
    for (const name of ["real", "standin"] as const) {
      const calls = this.#w.proxies[name].calls;
      let i = this.#checked[name];
      for (; i < calls.length && calls[i]!.at <= until; i++) {
        const call = calls[i]!;
        this.callsChecked[name]++;
        const inc = call.pid === undefined ? undefined : this.#w.replicas.byPid(call.pid);
        if (!inc) {
          findings.push({
            at: call.at,
            what: `${name} ${call.path} from a process that is no replica (pid ${call.pid})`,
          });
          continue;
        }
        if (!lease.heldAt(inc.identityPrefix, call.at, this.#o.leaseToleranceMs)) {
          findings.push({
            at: call.at,
            what: `${name} ${call.path} from ${inc.identityPrefix} while it did not hold the Lease`,
          });
        }
        for (const s of this.spells) {
          if (s.kind === "allowlist" && name !== "standin") continue;
          if (call.at >= s.on + this.#o.graceMs && (s.off === undefined || call.at <= s.off)) {
            findings.push({
              at: call.at,
              what: `${name} ${call.path} from ${inc.identityPrefix} ${
                Math.round(call.at - s.on)
              } ms into a ${s.kind === "pause" ? "pause" : "refusing allowlist"}`,
            });
          }
        }
      }
      this.#checked[name] = i;
    }
    return findings;
  }

  /** Where a Secret value (or its base64) shows in `text`: one line per find, naming the value's owner. */
  #scan(text: string, place: string): string[] {
    const found = new Set<string>();
    const look = (t: string, how: string) => {
      for (const m of t.matchAll(UUID)) {
        const whose = this.#w.secrets.whose(m[0]);
        if (whose) found.add(`${place}: ${how}${whose}`);
      }
    };
    look(text, "");
    for (const m of text.matchAll(BASE64)) {
      let decoded: string;
      try {
        decoded = atob(m[0].length % 4 === 0 ? m[0] : m[0].slice(0, m[0].length - (m[0].length % 4)));
      } catch {
        continue;
      }
      look(decoded, "base64 of ");
    }
    return [...found];
  }

  /** Sweeps the Events of one namespace (before it is deleted). */
  async sweepEvents(ns: string): Promise<string[]> {
    const events = await kubeList(this.#w.cp, `/api/v1/namespaces/${ns}/events`);
    return this.#scan(JSON.stringify(events), `Events of ${ns}`);
  }

  /** Sweeps what was written since the last sweep: replica output, /metrics, statuses, Events. */
  async leaks(): Promise<string[]> {
    const w = this.#w;
    const found: string[] = [];
    for (const inc of w.replicas.all()) {
      const path = inc.proc.logPath;
      let text = "";
      try {
        const bytes = await Deno.readFile(path);
        const from = this.#swept.get(path) ?? 0;
        text = new TextDecoder().decode(bytes.subarray(from));
        this.#swept.set(path, bytes.length);
      } catch { /* not written yet */ }
      found.push(...this.#scan(text, `output of ${inc.identityPrefix}`));
    }
    for (const inc of w.replicas.live()) {
      try {
        const res = await fetch(`${inc.metricsUrl}/metrics`, { signal: AbortSignal.timeout(5000) });
        found.push(...this.#scan(await res.text(), `/metrics of ${inc.identityPrefix}`));
      } catch { /* restarting */ }
    }
    const statuses = [
      ...(await kubeList(w.cp, `${BINDINGS}/backrestvolsyncbindings`)).map((b) => b.status),
      ...(await kubeList(w.cp, `${BINDINGS}/backrestvolsyncoperatorconfigs`)).map((b) => b.status),
    ];
    found.push(...this.#scan(JSON.stringify(statuses), "a status"));
    found.push(...this.#scan(JSON.stringify(await kubeList(w.cp, "/api/v1/events")), "Events"));
    return found;
  }
}
