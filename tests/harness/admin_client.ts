/**
 * The project's own Kubernetes client (lib/kube) connected to the test control plane as its admin, with a
 * fresh namespace to work in: where the client and informer tests start.
 */
import { createClient, type KubeClient, kubeconfigConnection } from "../../lib/kube/mod.ts";
import { type ControlPlane, controlPlane } from "./control_plane.ts";

/** A client of lib/kube as the admin, and the namespace made for it. */
export interface AdminClient {
  cp: ControlPlane;
  /** A fresh namespace. */
  ns: string;
  kube: KubeClient;
  /** Closes the connection. */
  close(): void;
}

/** Connects lib/kube's client to the control plane as the admin, in a fresh namespace `<prefix>-…`. */
export async function adminClient(prefix: string): Promise<AdminClient> {
  const cp = await controlPlane();
  const ns = await cp.namespace(prefix);
  const conn = await kubeconfigConnection({ path: cp.kubeconfigPath });
  return { cp, ns, kube: createClient(conn), close: () => conn.close() };
}
