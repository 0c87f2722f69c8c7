import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { Endpoint as _wormhole_v1_Endpoint, Endpoint__Output as _wormhole_v1_Endpoint__Output } from './wormhole/v1/Endpoint.js';
import type { GetPeersRequest as _wormhole_v1_GetPeersRequest, GetPeersRequest__Output as _wormhole_v1_GetPeersRequest__Output } from './wormhole/v1/GetPeersRequest.js';
import type { GetPeersResponse as _wormhole_v1_GetPeersResponse, GetPeersResponse__Output as _wormhole_v1_GetPeersResponse__Output } from './wormhole/v1/GetPeersResponse.js';
import type { PathState as _wormhole_v1_PathState, PathState__Output as _wormhole_v1_PathState__Output } from './wormhole/v1/PathState.js';
import type { PeerInfo as _wormhole_v1_PeerInfo, PeerInfo__Output as _wormhole_v1_PeerInfo__Output } from './wormhole/v1/PeerInfo.js';
import type { RegistryClient as _wormhole_v1_RegistryClient, RegistryDefinition as _wormhole_v1_RegistryDefinition } from './wormhole/v1/Registry.js';
import type { ReportRequest as _wormhole_v1_ReportRequest, ReportRequest__Output as _wormhole_v1_ReportRequest__Output } from './wormhole/v1/ReportRequest.js';
import type { ReportResponse as _wormhole_v1_ReportResponse, ReportResponse__Output as _wormhole_v1_ReportResponse__Output } from './wormhole/v1/ReportResponse.js';
import type { WatchEvent as _wormhole_v1_WatchEvent, WatchEvent__Output as _wormhole_v1_WatchEvent__Output } from './wormhole/v1/WatchEvent.js';
import type { WatchRequest as _wormhole_v1_WatchRequest, WatchRequest__Output as _wormhole_v1_WatchRequest__Output } from './wormhole/v1/WatchRequest.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  wormhole: {
    v1: {
      Endpoint: MessageTypeDefinition<_wormhole_v1_Endpoint, _wormhole_v1_Endpoint__Output>
      GetPeersRequest: MessageTypeDefinition<_wormhole_v1_GetPeersRequest, _wormhole_v1_GetPeersRequest__Output>
      GetPeersResponse: MessageTypeDefinition<_wormhole_v1_GetPeersResponse, _wormhole_v1_GetPeersResponse__Output>
      PathKind: EnumTypeDefinition
      PathState: MessageTypeDefinition<_wormhole_v1_PathState, _wormhole_v1_PathState__Output>
      PeerInfo: MessageTypeDefinition<_wormhole_v1_PeerInfo, _wormhole_v1_PeerInfo__Output>
      Registry: SubtypeConstructor<typeof grpc.Client, _wormhole_v1_RegistryClient> & { service: _wormhole_v1_RegistryDefinition }
      ReportRequest: MessageTypeDefinition<_wormhole_v1_ReportRequest, _wormhole_v1_ReportRequest__Output>
      ReportResponse: MessageTypeDefinition<_wormhole_v1_ReportResponse, _wormhole_v1_ReportResponse__Output>
      WatchEvent: MessageTypeDefinition<_wormhole_v1_WatchEvent, _wormhole_v1_WatchEvent__Output>
      WatchRequest: MessageTypeDefinition<_wormhole_v1_WatchRequest, _wormhole_v1_WatchRequest__Output>
    }
  }
}

