/**
 * The sharing store (groups, members, emails, what is shared) and the pure access rules.
 */
import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import { ServiceStore, StoreError } from "../../src/service/store.ts";
import { describeSharing, mayRunFunction, mayUseEndpoint } from "../../src/service/sharing.ts";

Deno.test("sharing store: groups, roles, emails, function and endpoint sharing", () => {
  const store = ServiceStore.open(":memory:");
  try {
    const s = store.sharing;
    const alice = store.addUser("alice", "pw").id;
    const bob = store.addUser("bob", "pw").id;
    s.setEmail(alice, "alice@example.org");
    assertEquals(s.identity(alice)?.email, "alice@example.org");
    throws(() => s.setEmail(bob, "bob at example"), StoreError);
    throws(() => s.setEmail(bob, "a@b@c"), StoreError);
    const lab = s.addGroup("lab", alice);
    throws(() => s.addGroup("lab"), /already exists/);
    for (const bad of ["", "a b", "-x", "x".repeat(65), lab.id, "lab/1"]) {
      throws(() => s.addGroup(bad), StoreError, bad);
    }
    assertEquals(s.findGroup("lab")?.id, lab.id);
    assertEquals(s.findGroup(lab.id.toUpperCase())?.name, "lab");
    s.setMember(lab.id, bob, "member");
    assertEquals(s.role(lab.id, bob), "member");
    s.setMember(lab.id, bob, "admin");
    assertEquals(s.userGroups(bob).map((g) => ({ ...g })), [{
      id: lab.id,
      name: "lab",
      role: "admin",
    }]);
    assertEquals(s.listGroups().map((g) => [g.name, g.members]), [["lab", 2]]);
    assertEquals(s.removeMember(lab.id, bob), true);
    assertEquals(s.removeMember(lab.id, bob), false);
    assertEquals(s.groupIdsOf(bob).size, 0);

    s.setFunctionGroup("f1", lab.id);
    assertEquals(s.functionGroup("f1"), lab.id);
    s.setFunctionGroup("f1", null);
    assertEquals(s.functionGroup("f1"), null);
    assertEquals(s.endpointSharing("e1"), { public: false, groups: [] });
    s.setEndpointSharing("e1", { public: true, groups: [lab.id] });
    assertEquals(s.endpointSharing("e1"), { public: true, groups: [lab.id] });
    s.forget("e1");
    assertEquals(s.endpointSharing("e1"), { public: false, groups: [] });
  } finally {
    store.close();
  }
});

Deno.test("access rules: owner, public, group, nobody else", () => {
  const none = new Set<string>();
  const inG = new Set(["g"]);
  assertEquals(mayRunFunction({ ownerId: 1, public: false, groupId: null }, 1, none), true);
  assertEquals(mayRunFunction({ ownerId: 1, public: false, groupId: null }, 2, inG), false);
  assertEquals(mayRunFunction({ ownerId: 1, public: false, groupId: "g" }, 2, inG), true);
  assertEquals(mayRunFunction({ ownerId: 1, public: false, groupId: "g" }, 2, none), false);
  assertEquals(mayRunFunction({ ownerId: 1, public: true, groupId: null }, 2, none), true);
  assertEquals(mayUseEndpoint({ ownerId: 1, public: false, groups: [] }, 2, inG), false);
  assertEquals(mayUseEndpoint({ ownerId: 1, public: false, groups: ["h", "g"] }, 2, inG), true);
  assertEquals(mayUseEndpoint({ ownerId: 1, public: true, groups: [] }, 2, none), true);
  assertEquals(describeSharing("alice", { public: false, groups: [] }), "alice only");
  assertEquals(describeSharing("alice", { public: true, groups: ["g"] }), "anyone (public)");
  assertEquals(
    describeSharing("alice", { public: false, groups: ["g", "h"] }),
    "alice and members of g, h",
  );
});
