// Original file: proto/wormhole/v1/registry.proto

import type { Endpoint as _wormhole_v1_Endpoint, Endpoint__Output as _wormhole_v1_Endpoint__Output } from '../../wormhole/v1/Endpoint.js';
import type { PathState as _wormhole_v1_PathState, PathState__Output as _wormhole_v1_PathState__Output } from '../../wormhole/v1/PathState.js';
import type { Long } from '@grpc/proto-loader';

export interface PeerInfo {
  'publicKey'?: (string);
  'endpoint'?: (_wormhole_v1_Endpoint | null);
  'lastHandshakeUnixMs'?: (number | string | Long);
  'allowedIps'?: (string)[];
  'rxBytes'?: (number | string | Long);
  'txBytes'?: (number | string | Long);
  'candidates'?: (_wormhole_v1_Endpoint)[];
  'paths'?: (_wormhole_v1_PathState)[];
  'endpointRevision'?: (number | string | Long);
}

export interface PeerInfo__Output {
  'publicKey': (string);
  'endpoint': (_wormhole_v1_Endpoint__Output | null);
  'lastHandshakeUnixMs': (number);
  'allowedIps': (string)[];
  'rxBytes': (number);
  'txBytes': (number);
  'candidates': (_wormhole_v1_Endpoint__Output)[];
  'paths': (_wormhole_v1_PathState__Output)[];
  'endpointRevision': (number);
}
