// Original file: proto/wormhole/v1/registry.proto

import type { GetPeersResponse as _wormhole_v1_GetPeersResponse, GetPeersResponse__Output as _wormhole_v1_GetPeersResponse__Output } from '../../wormhole/v1/GetPeersResponse.js';
import type { PeerInfo as _wormhole_v1_PeerInfo, PeerInfo__Output as _wormhole_v1_PeerInfo__Output } from '../../wormhole/v1/PeerInfo.js';

export interface WatchEvent {
  'snapshot'?: (_wormhole_v1_GetPeersResponse | null);
  'changed'?: (_wormhole_v1_PeerInfo | null);
  'removedPublicKey'?: (string);
  'event'?: "snapshot"|"changed"|"removedPublicKey";
}

export interface WatchEvent__Output {
  'snapshot'?: (_wormhole_v1_GetPeersResponse__Output | null);
  'changed'?: (_wormhole_v1_PeerInfo__Output | null);
  'removedPublicKey'?: (string);
  'event'?: "snapshot"|"changed"|"removedPublicKey";
}
