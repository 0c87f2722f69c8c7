// Original file: proto/wormhole/v1/registry.proto

import type { PeerInfo as _wormhole_v1_PeerInfo, PeerInfo__Output as _wormhole_v1_PeerInfo__Output } from '../../wormhole/v1/PeerInfo.js';

export interface GetPeersResponse {
  'registryPublicKey'?: (string);
  'peers'?: (_wormhole_v1_PeerInfo)[];
  'relay'?: (boolean);
}

export interface GetPeersResponse__Output {
  'registryPublicKey': (string);
  'peers': (_wormhole_v1_PeerInfo__Output)[];
  'relay': (boolean);
}
