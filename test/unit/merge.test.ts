/** ViewMerger: several registries' views as one, the freshest evidence first. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ViewMerger } from "../../src/node/merge.js";
import type { RegistryView } from "../../src/node/source.js";
import type { Endpoint } from "../../src/wg/types.js";
import { key } from "../support/keys.js";

const BOB = key(2);
const CAROL = key(3);
const ep = (port: number): Endpoint => ({ ip: "198.51.100.7", port });

function view(generation: number, endpoints: Array<[string, Endpoint | null]>, extra: Partial<RegistryView> = {}): RegistryView {
  return { endpoints: new Map(endpoints), candidates: new Map(), registryPublicKey: key(9), relay: false, generation, via: "watch", ...extra };
}

describe("ViewMerger", () => {
  it("with one registry, its view as it is", () => {
    const m = new ViewMerger(["r1", "r2"]);
    assert.equal(m.merged(), null);
    const v = view(1, [[BOB, ep(1)]]);
    m.update("r1", v, 0);
    assert.equal(m.merged()?.view, v);
  });

  const cases: Array<{ name: string; steps: Array<[string, RegistryView, number]>; bob: Endpoint | null; disagree: number }> = [
    {
      name: "an endpoint beats none",
      steps: [
        ["r1", view(1, [[BOB, null]]), 0],
        ["r2", view(1, [[BOB, ep(2)]]), 0],
      ],
      bob: ep(2),
      disagree: 0,
    },
    {
      name: "both from snapshots: the registry given first",
      steps: [
        ["r2", view(1, [[BOB, ep(2)]]), 0],
        ["r1", view(1, [[BOB, ep(1)]]), 5],
      ],
      bob: ep(1),
      disagree: 1,
    },
    {
      name: "a change reported live beats a snapshot's value (a rebinding while r1 is down)",
      steps: [
        ["r1", view(1, [[BOB, ep(1)]]), 0],
        ["r2", view(1, [[BOB, ep(1)]]), 0],
        ["r2", view(1, [[BOB, ep(5)]]), 10],
      ],
      bob: ep(5),
      disagree: 1,
    },
    {
      name: "a registry that comes back (new snapshot) does not undo what a live one reported while it was away",
      steps: [
        ["r1", view(1, [[BOB, ep(1)]]), 0],
        ["r2", view(1, [[BOB, ep(1)]]), 0],
        ["r2", view(1, [[BOB, ep(5)]]), 10],
        ["r1", view(2, [[BOB, ep(1)]]), 20],
      ],
      bob: ep(5),
      disagree: 1,
    },
    {
      name: "of two live changes, the later",
      steps: [
        ["r1", view(1, [[BOB, ep(1)]]), 0],
        ["r2", view(1, [[BOB, ep(1)]]), 0],
        ["r2", view(1, [[BOB, ep(5)]]), 10],
        ["r1", view(1, [[BOB, ep(6)]]), 11],
      ],
      bob: ep(6),
      disagree: 1,
    },
    {
      name: "they agree again: no disagreement",
      steps: [
        ["r1", view(1, [[BOB, ep(1)]]), 0],
        ["r2", view(1, [[BOB, ep(1)]]), 0],
        ["r2", view(1, [[BOB, ep(5)]]), 10],
        ["r1", view(1, [[BOB, ep(5)]]), 11],
      ],
      bob: ep(5),
      disagree: 0,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const m = new ViewMerger(["r1", "r2"]);
      for (const [name, v, at] of c.steps) m.update(name, v, at);
      const merged = m.merged();
      assert.deepEqual(merged?.view.endpoints.get(BOB), c.bob);
      assert.equal(merged?.disagreements.length, c.disagree);
    });
  }

  it("joins peers, candidates (deduplicated) and allowed IPs; relays when any does; generation grows with either", () => {
    const m = new ViewMerger(["r1", "r2"]);
    const lan = { ip: "192.168.1.10", port: 51820 };
    m.update("r1", view(3, [[BOB, ep(1)]], { candidates: new Map([[BOB, [lan]]]), allowedIps: new Map([[BOB, ["10.77.0.2/32"]]]) }), 0);
    m.update("r2", view(4, [[CAROL, ep(3)]], { candidates: new Map([[BOB, [lan, { ip: "192.168.1.11", port: 1 }]]]), relay: true }), 0);
    const v = m.merged()?.view;
    assert.deepEqual([...(v?.endpoints.keys() ?? [])].sort(), [BOB, CAROL].sort());
    assert.deepEqual(v?.candidates.get(BOB), [lan, { ip: "192.168.1.11", port: 1 }]);
    assert.deepEqual(v?.allowedIps?.get(BOB), ["10.77.0.2/32"]);
    assert.equal(v?.relay, true);
    assert.equal(v?.generation, 7);
    m.update("r2", view(5, [[CAROL, ep(3)]]), 1);
    assert.equal(m.merged()?.view.generation, 8);
  });
});
