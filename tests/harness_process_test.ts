/** The test harness's own rules that every peer stands on (tests/harness/process.ts). */
import assert from "node:assert/strict";
import { freePort } from "./harness/process.ts";

Deno.test("harness: peers' ports lie below the kernel's ephemeral range, free, and never handed out twice", () => {
  const [low] = Deno.readTextFileSync("/proc/sys/net/ipv4/ip_local_port_range").trim().split(/\s+/).map(
    Number,
  );
  const ports = Array.from({ length: 200 }, () => freePort());
  assert.equal(new Set(ports).size, ports.length, "no port twice");
  for (const port of ports) {
    // Outgoing connections take their local port from the ephemeral range: none can take these.
    assert.ok(port < low!, `${port} is below ${low}`);
    Deno.listen({ hostname: "127.0.0.1", port }).close();
  }
});
