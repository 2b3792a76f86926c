/**
 * Proves our `proto/` is a faithful subset of Backrest's own API at the pinned version: every service,
 * method, message, field (name, number, label, type, type name, JSON name, oneof, proto3 optional) and
 * enum value we declare exists upstream with the same meaning. Both sides are compiled by buf into
 * FileDescriptorSets, so the comparison reads descriptors, not text. Upstream comes from the Go module
 * proxy (`go mod download`), the same source the Backrest test peer is built from.
 */

import assert from "node:assert/strict";
import { clone, fromJson } from "@bufbuild/protobuf";
import {
  type DescriptorProto,
  type EnumDescriptorProto,
  type FileDescriptorSet,
  FileDescriptorSetSchema,
  type ServiceDescriptorProto,
} from "@bufbuild/protobuf/wkt";
import { buf } from "./tools/gen.ts";

const root = new URL("../", import.meta.url).pathname;

async function backrestVersion(): Promise<string> {
  const script = await Deno.readTextFile(`${root}tests/peers/build.sh`);
  const found = /^BACKREST_VERSION=(v[0-9.]+)$/m.exec(script)?.[1];
  if (!found) throw new Error("tests/peers/build.sh pins no BACKREST_VERSION");
  return found;
}

async function upstreamProtoDir(): Promise<string> {
  const version = await backrestVersion();
  const out = await new Deno.Command("go", {
    args: ["mod", "download", "-json", `github.com/garethgeorge/backrest@${version}`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const info: unknown = JSON.parse(new TextDecoder().decode(out.stdout));
  if (
    !out.success || typeof info !== "object" || info === null || !("Dir" in info) ||
    typeof info.Dir !== "string"
  ) {
    throw new Error(`go mod download failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return `${info.Dir}/proto`;
}

async function descriptorSet(dir: string): Promise<FileDescriptorSet> {
  const json: unknown = JSON.parse(
    new TextDecoder().decode(await buf(["build", dir, "--exclude-source-info", "-o", "-#format=json"])),
  );
  if (typeof json !== "object" || json === null) throw new Error("buf build gave no JSON object");
  // Options carry extensions (google.api.http) this registry does not know; they are not compared.
  return fromJson(FileDescriptorSetSchema, stripOptions(json), { ignoreUnknownFields: true });
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function stripOptions(value: unknown): Json {
  if (Array.isArray(value)) return value.map(stripOptions);
  if (typeof value === "object" && value !== null) {
    const out: { [k: string]: Json } = {};
    for (const [k, v] of Object.entries(value)) if (k !== "options") out[k] = stripOptions(v);
    return out;
  }
  if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") return value;
  return null;
}

interface Index {
  messages: Map<string, DescriptorProto>;
  enums: Map<string, EnumDescriptorProto>;
  services: Map<string, ServiceDescriptorProto>;
}

function index(set: FileDescriptorSet, onlyFiles?: Set<string>): Index {
  const idx: Index = { messages: new Map(), enums: new Map(), services: new Map() };
  const addMessage = (prefix: string, m: DescriptorProto) => {
    const name = `${prefix}.${m.name}`;
    idx.messages.set(name, m);
    for (const n of m.nestedType) addMessage(name, n);
    for (const e of m.enumType) idx.enums.set(`${name}.${e.name}`, e);
  };
  for (const file of set.file) {
    if (onlyFiles && !onlyFiles.has(file.name ?? "")) continue;
    const prefix = file.package ? `.${file.package}` : "";
    for (const m of file.messageType) addMessage(prefix, m);
    for (const e of file.enumType) idx.enums.set(`${prefix}.${e.name}`, e);
    for (const s of file.service) idx.services.set(`${prefix}.${s.name}`, s);
  }
  return idx;
}

/** Every difference between our declarations and upstream's, as readable lines (empty: compatible). */
function compare(ours: Index, theirs: Index): string[] {
  const problems: string[] = [];
  for (const [name, service] of ours.services) {
    const up = theirs.services.get(name);
    if (!up) {
      problems.push(`service ${name} does not exist upstream`);
      continue;
    }
    for (const method of service.method) {
      const m = up.method.find((x) => x.name === method.name);
      if (!m) problems.push(`method ${name}/${method.name} does not exist upstream`);
      else {
        for (const key of ["inputType", "outputType", "clientStreaming", "serverStreaming"] as const) {
          if (method[key] !== m[key]) {
            problems.push(`method ${name}/${method.name}: ${key} ${method[key]} != upstream ${m[key]}`);
          }
        }
      }
    }
  }
  for (const [name, message] of ours.messages) {
    const up = theirs.messages.get(name);
    if (!up) {
      problems.push(`message ${name} does not exist upstream`);
      continue;
    }
    for (const field of message.field) {
      const f = up.field.find((x) => x.name === field.name);
      if (!f) {
        problems.push(`field ${name}.${field.name} does not exist upstream`);
        continue;
      }
      for (const key of ["number", "label", "type", "typeName", "jsonName", "proto3Optional"] as const) {
        if (field[key] !== f[key]) {
          problems.push(`field ${name}.${field.name}: ${key} ${field[key]} != upstream ${f[key]}`);
        }
      }
      const ourOneof = field.oneofIndex === undefined ? undefined : message.oneofDecl[field.oneofIndex]?.name;
      const upOneof = f.oneofIndex === undefined ? undefined : up.oneofDecl[f.oneofIndex]?.name;
      if (ourOneof !== upOneof) {
        problems.push(`field ${name}.${field.name}: oneof ${ourOneof} != upstream ${upOneof}`);
      }
    }
  }
  for (const [name, e] of ours.enums) {
    const up = theirs.enums.get(name);
    if (!up) {
      problems.push(`enum ${name} does not exist upstream`);
      continue;
    }
    for (const value of e.value) {
      const v = up.value.find((x) => x.name === value.name);
      if (!v) problems.push(`enum value ${name}.${value.name} does not exist upstream`);
      else if (v.number !== value.number) {
        problems.push(`enum value ${name}.${value.name}: ${value.number} != upstream ${v.number}`);
      }
    }
  }
  return problems;
}

Deno.test("proto/ declares only what Backrest's pinned API has, with equal names, numbers and types", async (t) => {
  const [oursSet, theirsSet] = await Promise.all([
    descriptorSet(`${root}proto`),
    upstreamProtoDir().then(descriptorSet),
  ]);
  const ownFiles = new Set(oursSet.file.map((f) => f.name ?? "").filter((n) => !n.startsWith("google/")));
  const ours = index(oursSet, ownFiles);
  const theirs = index(theirsSet);

  await t.step("the declarations the operator relies on are there", () => {
    for (
      const m of [
        "AddRepo",
        "RemoveRepo",
        "CheckRepoExists",
        "GetConfig",
        "DoRepoTask",
        "GetSummaryDashboard",
      ]
    ) {
      assert.ok(ours.services.get(".v1.Backrest")?.method.some((x) => x.name === m), m);
    }
    assert.ok(ours.services.get(".v1.Authentication")?.method.some((x) => x.name === "Login"));
    assert.equal(ours.messages.get(".v1.Repo")?.field.length, theirs.messages.get(".v1.Repo")?.field.length);
  });

  await t.step("every declaration matches upstream", () => {
    assert.deepEqual(compare(ours, theirs), []);
  });

  await t.step("the comparison notices a changed number, type, enum value and a made-up method", () => {
    const mutated = clone(FileDescriptorSetSchema, oursSet);
    const config = mutated.file.find((f) => f.name === "v1/config.proto");
    const repo = config?.messageType.find((m) => m.name === "Repo");
    const password = repo?.field.find((f) => f.name === "password");
    const env = repo?.field.find((f) => f.name === "env");
    const clock = config?.messageType.find((m) => m.name === "Schedule")?.enumType[0]?.value[1];
    const service = mutated.file.find((f) => f.name === "v1/service.proto")?.service[0];
    assert.ok(password && env && clock && service);
    password.number = 30;
    env.label = 1; // LABEL_OPTIONAL instead of repeated
    clock.number = 9;
    service.method.push({ ...service.method[0]!, name: "SetConfig2" });
    const problems = compare(index(mutated, ownFiles), theirs);
    assert.equal(problems.length, 4, problems.join("\n"));
  });
});
