import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { GetEndpointReply as _wgSvc_proto_GetEndpointReply, GetEndpointReply__Output as _wgSvc_proto_GetEndpointReply__Output } from './wgSvc/proto/GetEndpointReply.js';
import type { GetEndpointRequest as _wgSvc_proto_GetEndpointRequest, GetEndpointRequest__Output as _wgSvc_proto_GetEndpointRequest__Output } from './wgSvc/proto/GetEndpointRequest.js';
import type { Peer as _wgSvc_proto_Peer, Peer__Output as _wgSvc_proto_Peer__Output } from './wgSvc/proto/Peer.js';
import type { RegReply as _wgSvc_proto_RegReply, RegReply__Output as _wgSvc_proto_RegReply__Output } from './wgSvc/proto/RegReply.js';
import type { RegRequest as _wgSvc_proto_RegRequest, RegRequest__Output as _wgSvc_proto_RegRequest__Output } from './wgSvc/proto/RegRequest.js';
import type { RegistryClient as _wgSvc_proto_RegistryClient, RegistryDefinition as _wgSvc_proto_RegistryDefinition } from './wgSvc/proto/Registry.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  wgSvc: {
    proto: {
      GetEndpointReply: MessageTypeDefinition<_wgSvc_proto_GetEndpointReply, _wgSvc_proto_GetEndpointReply__Output>
      GetEndpointRequest: MessageTypeDefinition<_wgSvc_proto_GetEndpointRequest, _wgSvc_proto_GetEndpointRequest__Output>
      Peer: MessageTypeDefinition<_wgSvc_proto_Peer, _wgSvc_proto_Peer__Output>
      RegReply: MessageTypeDefinition<_wgSvc_proto_RegReply, _wgSvc_proto_RegReply__Output>
      RegRequest: MessageTypeDefinition<_wgSvc_proto_RegRequest, _wgSvc_proto_RegRequest__Output>
      Registry: SubtypeConstructor<typeof grpc.Client, _wgSvc_proto_RegistryClient> & { service: _wgSvc_proto_RegistryDefinition }
    }
  }
}

