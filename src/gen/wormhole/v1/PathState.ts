// Original file: proto/wormhole/v1/registry.proto

import type { PathKind as _wormhole_v1_PathKind, PathKind__Output as _wormhole_v1_PathKind__Output } from '../../wormhole/v1/PathKind.js';
import type { Endpoint as _wormhole_v1_Endpoint, Endpoint__Output as _wormhole_v1_Endpoint__Output } from '../../wormhole/v1/Endpoint.js';
import type { Long } from '@grpc/proto-loader';

export interface PathState {
  'peerPublicKey'?: (string);
  'kind'?: (_wormhole_v1_PathKind);
  'sinceUnixMs'?: (number | string | Long);
  'endpoint'?: (_wormhole_v1_Endpoint | null);
  'rttMs'?: (number);
}

export interface PathState__Output {
  'peerPublicKey': (string);
  'kind': (_wormhole_v1_PathKind__Output);
  'sinceUnixMs': (number);
  'endpoint': (_wormhole_v1_Endpoint__Output | null);
  'rttMs': (number);
}
