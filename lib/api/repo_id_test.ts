import assert from "node:assert/strict";
import { foreignDefaultId } from "./repo_id.ts";

Deno.test("foreignDefaultId() reads every way an id can be another namespace's default id, for every kind", () => {
  assert.equal(foreignDefaultId("volsync-other-replicationsource-db", "mine"), true);
  assert.equal(foreignDefaultId("volsync-other-replicationdestination-db", "mine"), true);
  assert.equal(foreignDefaultId("volsync-mine-replicationsource-db", "mine"), false, "its own");
  // A namespace whose name holds the kind's word: one of the readings names another namespace.
  assert.equal(foreignDefaultId("volsync-a-replicationsource-b-replicationsource-c", "a"), true);
  assert.equal(foreignDefaultId("volsync--replicationsource-db", "mine"), false, "no namespace at all");
  assert.equal(foreignDefaultId("volsync-other-replicationsource-", "mine"), false, "no name");
  assert.equal(foreignDefaultId("team-db", "mine"), false);
});
