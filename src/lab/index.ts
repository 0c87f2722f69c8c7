/** The NAT lab's public surface. See lab.ts for the topology. */
export type { AgentDriver, ManualAgentsOptions, WormholeAgentsOptions, WormholeDriver } from "./agents.js";
export { defaultWormholeCommand, manualAgents, startAgents, wormholeAgents } from "./agents.js";
export type { DemoOptions, DemoResult, DemoRow } from "./demo.js";
export { renderDemoTable, runDemo } from "./demo.js";
export type { Expectation, PairEnds, Verdict } from "./expectations.js";
export { GAPS, accepted, expectedPath, judge } from "./expectations.js";
export type { LabOptions, PingResult } from "./lab.js";
export { Lab, LabClosedError, createLab, withLab } from "./lab.js";
export type { MatrixOptions, MatrixResult, PairVerdict } from "./matrix.js";
export { matrixSites, measureMatrix, renderGrid, representatives, runMatrix } from "./matrix.js";
export type { Ipv6Profile, NatBehaviour, NatProfile, SiteIpv6 } from "./nat.js";
export { IPV6_PROFILES, NAT_BEHAVIOURS, NAT_DESCRIPTIONS, firewall6Ruleset, isNatBehaviour, natRuleset } from "./nat.js";
export type { PairResult, PathFamily, PathKind } from "./path.js";
export { PATH_KINDS, classifyPath, measurePaths, pathFamily, pathLabel } from "./path.js";
export type { Prerequisites } from "./preflight.js";
export { checkPrerequisites, whyLabCannotRun } from "./preflight.js";
export type { NodeFirstResult, RebindResult, RegistryRestartResult, ScenarioOptions } from "./scenarios.js";
export { ALICE, BOB, pairSites, rebindAndRecover, runNodeFirstScenario, runRebindScenario, runRegistryRestartScenario, waitConnected } from "./scenarios.js";
export {
  type CallOutcome,
  type CandidatesSeen,
  type PublicApiResult,
  type ReportAttempt,
  type TunnelIdentityResult,
  runPublicApiScenario,
  runTunnelIdentityScenario,
} from "./security.js";
export type { Leftovers, SweepReport } from "./sweep.js";
export { findLeftovers, isEmpty, sweepLeftovers } from "./sweep.js";
export type { LabPlan, NodePlan, SiteSpec } from "./topology.js";
export { planLab } from "./topology.js";
