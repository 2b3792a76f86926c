/**
 * A Backrest STAND-IN: an in-memory server that answers at once and speaks the same Connect API as
 * Backrest v1.14.1 (unary POST, `application/proto` and `application/json`, Connect error bodies), for
 * scale beyond what one real Backrest serves (it runs restic for every AddRepo and CheckRepoExists).
 * It runs no restic and stores nothing on disk. Use the real Backrest (`backrest.ts`) for behaviour;
 * use this for benchmarks and tests that need thousands of repos. `tests/backrest_standin_test.ts`
 * proves the real client sees the same answers from both.
 *
 * Served: AddRepo (upsert by id, answers the whole Config like the real server; in the binary encoding
 * that answer is put together from each repo's bytes, kept since it was stored, so even at 5 000 repos the
 * stand-in answers at once while the client still receives every byte), RemoveRepo (unknown id:
 * no-op), CheckRepoExists (`exists: true` unless `setExists(uri, false)`), DoRepoTask (not_found for an
 * unknown repo), GetSummaryDashboard (repo ids), GetConfig (for assertions). A body that cannot be
 * parsed gets the real server's 400 `invalid_argument` "unmarshal into *v1.<Request>", which the
 * client's version probe relies on. Every request is counted per method.
 */

import {
  create,
  type DescMessage,
  fromBinary,
  fromJson,
  type JsonValue,
  type MessageShape,
  toBinary,
  toJson,
} from "@bufbuild/protobuf";
import { EmptySchema } from "@bufbuild/protobuf/wkt";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { type Config, ConfigSchema, type Repo, RepoSchema } from "../../gen/v1/config_pb.ts";
import {
  AddRepoRequestSchema,
  CheckRepoExistsRequestSchema,
  CheckRepoExistsResponseSchema,
  DoRepoTaskRequestSchema,
  RemoveRepoRequestSchema,
  ScheduleTaskResponseSchema,
  SummaryDashboardResponseSchema,
} from "../../gen/v1/service_pb.ts";

/** The methods the stand-in serves (Connect names under `/v1.Backrest/`). */
export type StandinMethod =
  | "AddRepo"
  | "RemoveRepo"
  | "CheckRepoExists"
  | "DoRepoTask"
  | "GetSummaryDashboard"
  | "GetConfig";

export const STANDIN_METHODS: readonly StandinMethod[] = [
  "AddRepo",
  "RemoveRepo",
  "CheckRepoExists",
  "DoRepoTask",
  "GetSummaryDashboard",
  "GetConfig",
];

export interface BackrestStandinOptions {
  /** `config.instance` (default "standin"). */
  instance?: string;
  /**
   * What AddRepo and RemoveRepo answer: "full" (default) the whole Config with every repo, as the real
   * server does; "empty" a Config without repos, to keep the stand-in's own cost out of very large runs.
   */
  configAnswer?: "full" | "empty";
  /** Milliseconds every call waits before answering (default 0: instant). */
  delayMs?: number;
  /** Called after every stored change (AddRepo: the new entry; RemoveRepo: the id), for lag measurements. */
  onChange?: (change: { repo: Repo } | { removed: string }) => void;
}

export interface BackrestStandin {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** Requests per method, malformed ones (the client's probe) included. */
  readonly calls: Record<StandinMethod, number>;
  /** Requests that were refused before reaching a method (unparseable body, unknown path, bad verb). */
  readonly rejected: number;
  /** Sum of `calls`. */
  totalCalls(): number;
  /** Zeroes `calls` and `rejected`. */
  resetCalls(): void;
  /** The stored repos by id (live view; tests read, the server writes). */
  readonly repos: ReadonlyMap<string, Repo>;
  /** The whole config, as GetConfig answers it. */
  config(): Config;
  /** What CheckRepoExists answers for `uri` (default true). */
  setExists(uri: string, exists: boolean): void;
  /** Forgets every repo, as a Backrest whose config was wiped behind the operator's back. */
  clear(): void;
  stop(): Promise<void>;
}

/** HTTP status of each Connect code (connect-go's mapping). */
const HTTP_STATUS: Record<string, number> = {
  invalid_argument: 400,
  not_found: 404,
  unknown: 500,
  unimplemented: 501,
};

class ConnectFailure extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

/** Go's type name in connect-go's unmarshal errors: `*v1.AddRepoRequest`, `*emptypb.Empty`. */
function goTypeName(schema: DescMessage): string {
  return schema.typeName === "google.protobuf.Empty" ? "*emptypb.Empty" : `*${schema.typeName}`;
}

/** What AddRepo and RemoveRepo answer: the Config, encoded by `serve` (from kept repo bytes when binary). */
class ConfigAnswer {
  constructor(readonly withRepos: boolean) {}
}

/** A stable 64-hex guid derived from the uri (the real server asks restic for the repo id). */
async function fakeGuid(uri: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(uri));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Starts a stand-in on a free loopback port. */
export function startBackrestStandin(opts: BackrestStandinOptions = {}): BackrestStandin {
  const instance = opts.instance ?? "standin";
  const repos = new Map<string, Repo>();
  /** Per repo id, the repo as Config field 3 on the wire (tag, length, bytes); same order as `repos`. */
  const repoField = new Map<string, Uint8Array<ArrayBuffer>>();
  const missing = new Set<string>();
  const calls = Object.fromEntries(STANDIN_METHODS.map((m) => [m, 0])) as Record<StandinMethod, number>;
  let rejected = 0;
  let nextOperation = 1n;

  const config = (withRepos = true): Config =>
    create(ConfigSchema, {
      version: 6,
      instance,
      repos: withRepos ? [...repos.values()] : [],
      auth: { disabled: true },
    });
  const configAnswer = () => new ConfigAnswer(opts.configAnswer !== "empty");
  /** `config(withRepos)` in the binary encoding: the rest of the Config, then every kept repo field. */
  const configBinary = (withRepos: boolean): Uint8Array<ArrayBuffer> => {
    const head = toBinary(ConfigSchema, config(false));
    if (!withRepos) return head;
    let size = head.length;
    for (const f of repoField.values()) size += f.length;
    const out = new Uint8Array(size);
    out.set(head);
    let at = head.length;
    for (const f of repoField.values()) {
      out.set(f, at);
      at += f.length;
    }
    return out;
  };

  // Each handler: request schema, response schema, and what to do.
  type Handler<I extends DescMessage, O extends DescMessage> = {
    input: I;
    output: O;
    run: (
      req: MessageShape<I>,
    ) => Promise<MessageShape<O> | ConfigAnswer> | MessageShape<O> | ConfigAnswer;
  };
  const handler = <I extends DescMessage, O extends DescMessage>(h: Handler<I, O>) =>
    h as unknown as Handler<DescMessage, DescMessage>;
  const handlers: Record<StandinMethod, Handler<DescMessage, DescMessage>> = {
    AddRepo: handler({
      input: AddRepoRequestSchema,
      output: ConfigSchema,
      run: async (req) => {
        const repo = req.repo;
        if (!repo) throw new ConnectFailure("invalid_argument", "validation error: repo is required");
        if (!repo.id) {
          throw new ConnectFailure("invalid_argument", `validation error: repo: id "" invalid: empty`);
        }
        if (repo.id.startsWith("_") && repo.id.endsWith("_")) {
          throw new ConnectFailure(
            "invalid_argument",
            `validation error: repo: id "${repo.id}" invalid: IDs starting and ending with '_' are reserved`,
          );
        }
        if (!repo.uri) {
          throw new ConnectFailure("invalid_argument", "validation error: repo: uri is required");
        }
        if (repo.autoInitialize) {
          throw new ConnectFailure("invalid_argument", "validation error: repo: guid and auto_initialize");
        }
        // Upsert by id: the whole entry is replaced; the guid comes from the "repository".
        const stored = create(RepoSchema, { ...repo, guid: await fakeGuid(repo.uri) });
        repos.set(repo.id, stored);
        repoField.set(
          repo.id,
          new BinaryWriter().tag(3, WireType.LengthDelimited).bytes(toBinary(RepoSchema, stored)).finish(),
        );
        opts.onChange?.({ repo: stored });
        return configAnswer();
      },
    }),
    RemoveRepo: handler({
      input: RemoveRepoRequestSchema,
      output: ConfigSchema,
      run: (req) => {
        repoField.delete(req.repoId);
        if (repos.delete(req.repoId)) opts.onChange?.({ removed: req.repoId });
        return configAnswer();
      },
    }),
    CheckRepoExists: handler({
      input: CheckRepoExistsRequestSchema,
      output: CheckRepoExistsResponseSchema,
      run: (req) => create(CheckRepoExistsResponseSchema, { exists: !missing.has(req.repo?.uri ?? "") }),
    }),
    DoRepoTask: handler({
      input: DoRepoTaskRequestSchema,
      output: ScheduleTaskResponseSchema,
      run: (req) => {
        if (!repos.has(req.repoId)) {
          throw new ConnectFailure("not_found", `get repo "${req.repoId}": repo not found`);
        }
        return create(ScheduleTaskResponseSchema, { operationId: nextOperation++ });
      },
    }),
    GetSummaryDashboard: handler({
      input: EmptySchema,
      output: SummaryDashboardResponseSchema,
      run: () =>
        create(SummaryDashboardResponseSchema, {
          repoSummaries: [...repos.keys()].map((id) => ({ id })),
          configPath: "/standin/config.json",
          dataPath: "/standin/data",
        }),
    }),
    GetConfig: handler({ input: EmptySchema, output: ConfigSchema, run: () => config() }),
  };

  const errorResponse = (code: string, message: string) =>
    new Response(JSON.stringify({ code, message }), {
      status: HTTP_STATUS[code] ?? 500,
      headers: { "content-type": "application/json" },
    });

  const serve = async (req: Request): Promise<Response> => {
    const path = new URL(req.url).pathname;
    const method = path.startsWith("/v1.Backrest/") ? path.slice("/v1.Backrest/".length) : "";
    const h = (handlers as Record<string, Handler<DescMessage, DescMessage> | undefined>)[method];
    if (!h || !Object.hasOwn(handlers, method)) {
      rejected++;
      await req.body?.cancel();
      return new Response("404 page not found\n", {
        status: 404,
        headers: { "content-type": "text/plain; charset=utf-8" },
      });
    }
    calls[method as StandinMethod]++;
    if (req.method !== "POST") {
      rejected++;
      await req.body?.cancel();
      return new Response(null, { status: 405, headers: { allow: "POST" } });
    }
    const contentType = (req.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
    const json = contentType === "application/json";
    if (!json && contentType !== "application/proto") {
      rejected++;
      await req.body?.cancel();
      return new Response(null, {
        status: 415,
        headers: { "accept-post": "application/json, application/proto" },
      });
    }
    const body = new Uint8Array(await req.arrayBuffer());
    let input;
    try {
      input = json
        ? fromJson(h.input, JSON.parse(new TextDecoder().decode(body) || "{}") as JsonValue, {
          ignoreUnknownFields: true,
        })
        : fromBinary(h.input, body);
    } catch (e) {
      rejected++;
      const why = json
        ? `proto: syntax error: ${e instanceof Error ? e.message : e}`
        : "proto: cannot parse invalid wire-format data";
      return errorResponse(
        "invalid_argument",
        `unmarshal message: unmarshal into ${goTypeName(h.input)}: ${why}`,
      );
    }
    if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
    let output;
    try {
      output = await h.run(input);
    } catch (e) {
      if (e instanceof ConnectFailure) return errorResponse(e.code, e.message);
      return errorResponse("unknown", e instanceof Error ? e.message : String(e));
    }
    if (output instanceof ConfigAnswer) {
      if (!json) {
        return new Response(configBinary(output.withRepos), {
          headers: { "content-type": "application/proto" },
        });
      }
      output = config(output.withRepos);
    }
    return json
      ? new Response(JSON.stringify(toJson(h.output, output)), {
        headers: { "content-type": "application/json" },
      })
      : new Response(toBinary(h.output, output), { headers: { "content-type": "application/proto" } });
  };

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, serve);
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    calls,
    get rejected() {
      return rejected;
    },
    totalCalls: () => Object.values(calls).reduce((a, b) => a + b, 0),
    resetCalls() {
      for (const m of STANDIN_METHODS) calls[m] = 0;
      rejected = 0;
    },
    repos,
    config: () => config(),
    setExists(uri, exists) {
      if (exists) missing.delete(uri);
      else missing.add(uri);
    },
    clear() {
      repos.clear();
      repoField.clear();
    },
    stop: () => server.shutdown(),
  };
}
