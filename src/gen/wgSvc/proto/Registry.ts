// Original file: proto/wgSvc.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { GetEndpointReply as _wgSvc_proto_GetEndpointReply, GetEndpointReply__Output as _wgSvc_proto_GetEndpointReply__Output } from '../../wgSvc/proto/GetEndpointReply.js';
import type { GetEndpointRequest as _wgSvc_proto_GetEndpointRequest, GetEndpointRequest__Output as _wgSvc_proto_GetEndpointRequest__Output } from '../../wgSvc/proto/GetEndpointRequest.js';
import type { RegReply as _wgSvc_proto_RegReply, RegReply__Output as _wgSvc_proto_RegReply__Output } from '../../wgSvc/proto/RegReply.js';
import type { RegRequest as _wgSvc_proto_RegRequest, RegRequest__Output as _wgSvc_proto_RegRequest__Output } from '../../wgSvc/proto/RegRequest.js';

export interface RegistryClient extends grpc.Client {
  GetEndpoint(argument: _wgSvc_proto_GetEndpointRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_wgSvc_proto_GetEndpointReply__Output>): grpc.ClientUnaryCall;
  GetEndpoint(argument: _wgSvc_proto_GetEndpointRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_wgSvc_proto_GetEndpointReply__Output>): grpc.ClientUnaryCall;
  GetEndpoint(argument: _wgSvc_proto_GetEndpointRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_wgSvc_proto_GetEndpointReply__Output>): grpc.ClientUnaryCall;
  GetEndpoint(argument: _wgSvc_proto_GetEndpointRequest, callback: grpc.requestCallback<_wgSvc_proto_GetEndpointReply__Output>): grpc.ClientUnaryCall;
  getEndpoint(argument: _wgSvc_proto_GetEndpointRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_wgSvc_proto_GetEndpointReply__Output>): grpc.ClientUnaryCall;
  getEndpoint(argument: _wgSvc_proto_GetEndpointRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_wgSvc_proto_GetEndpointReply__Output>): grpc.ClientUnaryCall;
  getEndpoint(argument: _wgSvc_proto_GetEndpointRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_wgSvc_proto_GetEndpointReply__Output>): grpc.ClientUnaryCall;
  getEndpoint(argument: _wgSvc_proto_GetEndpointRequest, callback: grpc.requestCallback<_wgSvc_proto_GetEndpointReply__Output>): grpc.ClientUnaryCall;
  
  RegisterEndpoint(argument: _wgSvc_proto_RegRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_wgSvc_proto_RegReply__Output>): grpc.ClientUnaryCall;
  RegisterEndpoint(argument: _wgSvc_proto_RegRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_wgSvc_proto_RegReply__Output>): grpc.ClientUnaryCall;
  RegisterEndpoint(argument: _wgSvc_proto_RegRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_wgSvc_proto_RegReply__Output>): grpc.ClientUnaryCall;
  RegisterEndpoint(argument: _wgSvc_proto_RegRequest, callback: grpc.requestCallback<_wgSvc_proto_RegReply__Output>): grpc.ClientUnaryCall;
  registerEndpoint(argument: _wgSvc_proto_RegRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_wgSvc_proto_RegReply__Output>): grpc.ClientUnaryCall;
  registerEndpoint(argument: _wgSvc_proto_RegRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_wgSvc_proto_RegReply__Output>): grpc.ClientUnaryCall;
  registerEndpoint(argument: _wgSvc_proto_RegRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_wgSvc_proto_RegReply__Output>): grpc.ClientUnaryCall;
  registerEndpoint(argument: _wgSvc_proto_RegRequest, callback: grpc.requestCallback<_wgSvc_proto_RegReply__Output>): grpc.ClientUnaryCall;
  
}

export interface RegistryHandlers extends grpc.UntypedServiceImplementation {
  GetEndpoint: grpc.handleUnaryCall<_wgSvc_proto_GetEndpointRequest__Output, _wgSvc_proto_GetEndpointReply>;
  
  RegisterEndpoint: grpc.handleUnaryCall<_wgSvc_proto_RegRequest__Output, _wgSvc_proto_RegReply>;
  
}

export interface RegistryDefinition extends grpc.ServiceDefinition {
  GetEndpoint: MethodDefinition<_wgSvc_proto_GetEndpointRequest, _wgSvc_proto_GetEndpointReply, _wgSvc_proto_GetEndpointRequest__Output, _wgSvc_proto_GetEndpointReply__Output>
  RegisterEndpoint: MethodDefinition<_wgSvc_proto_RegRequest, _wgSvc_proto_RegReply, _wgSvc_proto_RegRequest__Output, _wgSvc_proto_RegReply__Output>
}
