/**
 * Stand-ins the reconcilers' unit tests share (test code, never imported by the operator); the Kubernetes
 * API's is lib/testing/fake_apiserver.ts.
 * - `fakeBackrest`: a stand-in for the Backrest clients (every call recorded, repos kept by id).
 * - `eventLog`: a stand-in for the Event recorder (an EventSink that keeps what it is given).
 * - `reconcileContext`: what a controller hands a reconcile (no logging, a signal that never aborts).
 */
import type { BackrestApi, BackrestConnection, DesiredRepo } from "../backrest/mod.ts";
import { objectKey } from "../kube/mod.ts";
import { nullLogger } from "../observe/mod.ts";
import type { ReconcileContext } from "../runtime/mod.ts";
import type { EventSink } from "./binding_status.ts";

/** The fake Backrest and what it records. */
export interface FakeBackrest {
  /** The client factory the reconciler and `createOperator` take (`backrest`). */
  connect: (connection: BackrestConnection) => BackrestApi;
  /** Every call by RPC name (`addRepo`, `checkRepoExists`, ...), in order; `probe` is not recorded. */
  calls: string[];
  /** Each repo an AddRepo that succeeded was given, in order. */
  applied: DesiredRepo[];
  /** The connection (URL, credentials) of each entry of `applied`. */
  connections: BackrestConnection[];
  /** The repos held now, by id (added, not removed since). */
  repos: Map<string, DesiredRepo>;
  /** Makes every later AddRepo reject with `error` (undefined: succeed again). */
  failAddRepo(error: Error | undefined): void;
}

/**
 * A stand-in for the Backrest clients: every call recorded, AddRepo kept by id, CheckRepoExists always
 * true, DoRepoTask answering operation 0, ListRepoIds the ids it holds. No restic, no HTTP, no auth check.
 */
export function fakeBackrest(): FakeBackrest {
  const calls: string[] = [];
  const applied: DesiredRepo[] = [];
  const connections: BackrestConnection[] = [];
  const repos = new Map<string, DesiredRepo>();
  let addRepoFailure: Error | undefined;
  const connect = (connection: BackrestConnection): BackrestApi => ({
    url: connection.url,
    addRepo: (r) => {
      calls.push("addRepo");
      if (addRepoFailure) return Promise.reject(addRepoFailure);
      applied.push(r);
      connections.push(connection);
      repos.set(r.id, r);
      return Promise.resolve();
    },
    removeRepo: (id) => (calls.push("removeRepo"), repos.delete(id), Promise.resolve()),
    checkRepoExists: () => (calls.push("checkRepoExists"), Promise.resolve(true)),
    doRepoTask: () => (calls.push("doRepoTask"), Promise.resolve(0n)),
    listRepoIds: () => (calls.push("listRepoIds"), Promise.resolve([...repos.keys()])),
    probe: () => Promise.resolve(),
  });
  return {
    connect,
    calls,
    applied,
    connections,
    repos,
    failAddRepo: (e) => addRepoFailure = e,
  };
}

/** One Event the stand-in recorder was given. */
export interface RecordedEvent {
  /** `namespace/name` of the object the Event is about. */
  object: string;
  type: "Normal" | "Warning";
  reason: string;
  message: string;
}

/** A stand-in for the Event recorder: keeps every Event, and their reasons as a list of their own. */
export function eventLog(): { sink: EventSink; events: RecordedEvent[]; reasons: string[] } {
  const events: RecordedEvent[] = [];
  const reasons: string[] = [];
  const sink: EventSink = {
    record: (obj, type, reason, message) => {
      events.push({ object: objectKey(obj), type, reason, message });
      reasons.push(reason);
    },
  };
  return { sink, events, reasons };
}

/** The context a controller hands a reconcile: no logging, a signal that never aborts. */
export function reconcileContext(): ReconcileContext {
  return { signal: new AbortController().signal, log: nullLogger(), reconcileID: "t", retries: 0 };
}
