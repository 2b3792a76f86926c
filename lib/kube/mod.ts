/**
 * A thin Kubernetes client over Deno's `fetch`: connection (kubeconfig or in-cluster), the client contract
 * (`contract.ts`), one error class, the watch stream, an aggregating Event recorder and the Lease type.
 * Rules: every call takes an `AbortSignal` and has a timeout; errors never echo request bodies;
 * metadata-only reads never carry Secret data.
 *
 * @module
 */

export type {
  ApplyOptions,
  CallOptions,
  DeleteOptions,
  KubeClient,
  ListOptions,
  ListPage,
  NamespaceOption,
  PatchType,
  SelectorOptions,
  WatchEvent,
  WatchOptions,
  WriteOptions,
} from "./contract.ts";
export { type ClientOptions, createClient } from "./client.ts";
export {
  connect,
  type Connection,
  type ConnectionOptions,
  inClusterAvailable,
  inClusterConnection,
  type InClusterOptions,
  kubeconfigConnection,
  type KubeconfigOptions,
  type PreparedRequest,
  SERVICE_ACCOUNT_DIR,
} from "./connection.ts";
export { isConflict, isNamespaceGone, isNamespaceTerminating, isNotFound, KubeError } from "./errors.ts";
export {
  compareResourceVersions,
  isKubeObject,
  isObjectMeta,
  isRecord,
  type JsonObject,
  type KubeObject,
  LAST_APPLIED_ANNOTATION,
  namespacedKey,
  objectKey,
  type ObjectMeta,
  type OwnerReference,
  parseKubeObject,
  parsePartialObjectMetadata,
  parseStatus,
  type Status,
} from "./object.ts";
export {
  configMaps,
  namespaces,
  resourcePath,
  type ResourceType,
  resourceType,
  secrets,
} from "./resource.ts";
export { parseWatchLine, parseWatchStream, readLines } from "./watch_stream.ts";
export {
  EventRecorder,
  type EventRecorderOptions,
  events,
  type EventType,
  type ObjectReference,
} from "./events.ts";
export { type Lease, leases, type LeaseSpec, microTime, parseLease, parseMicroTime } from "./lease.ts";
