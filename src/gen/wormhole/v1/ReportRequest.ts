// Original file: proto/wormhole/v1/registry.proto

import type { Endpoint as _wormhole_v1_Endpoint, Endpoint__Output as _wormhole_v1_Endpoint__Output } from '../../wormhole/v1/Endpoint.js';
import type { PathState as _wormhole_v1_PathState, PathState__Output as _wormhole_v1_PathState__Output } from '../../wormhole/v1/PathState.js';

export interface ReportRequest {
  'publicKey'?: (string);
  'candidates'?: (_wormhole_v1_Endpoint)[];
  'paths'?: (_wormhole_v1_PathState)[];
}

export interface ReportRequest__Output {
  'publicKey': (string);
  'candidates': (_wormhole_v1_Endpoint__Output)[];
  'paths': (_wormhole_v1_PathState__Output)[];
}
