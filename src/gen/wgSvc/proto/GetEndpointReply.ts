// Original file: proto/wgSvc.proto

import type { Peer as _wgSvc_proto_Peer, Peer__Output as _wgSvc_proto_Peer__Output } from '../../wgSvc/proto/Peer.js';

export interface GetEndpointReply {
  'deviceName'?: (string);
  'deviceType'?: (string);
  'pubKey'?: (string);
  'Peers'?: (_wgSvc_proto_Peer)[];
}

export interface GetEndpointReply__Output {
  'deviceName': (string);
  'deviceType': (string);
  'pubKey': (string);
  'Peers': (_wgSvc_proto_Peer__Output)[];
}
