// Original file: proto/wormhole/v1/registry.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { GetPeersRequest as _wormhole_v1_GetPeersRequest, GetPeersRequest__Output as _wormhole_v1_GetPeersRequest__Output } from '../../wormhole/v1/GetPeersRequest.js';
import type { GetPeersResponse as _wormhole_v1_GetPeersResponse, GetPeersResponse__Output as _wormhole_v1_GetPeersResponse__Output } from '../../wormhole/v1/GetPeersResponse.js';
import type { ReportRequest as _wormhole_v1_ReportRequest, ReportRequest__Output as _wormhole_v1_ReportRequest__Output } from '../../wormhole/v1/ReportRequest.js';
import type { ReportResponse as _wormhole_v1_ReportResponse, ReportResponse__Output as _wormhole_v1_ReportResponse__Output } from '../../wormhole/v1/ReportResponse.js';
import type { WatchEvent as _wormhole_v1_WatchEvent, WatchEvent__Output as _wormhole_v1_WatchEvent__Output } from '../../wormhole/v1/WatchEvent.js';
import type { WatchRequest as _wormhole_v1_WatchRequest, WatchRequest__Output as _wormhole_v1_WatchRequest__Output } from '../../wormhole/v1/WatchRequest.js';

export interface RegistryClient extends grpc.Client {
  GetPeers(argument: _wormhole_v1_GetPeersRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_wormhole_v1_GetPeersResponse__Output>): grpc.ClientUnaryCall;
  GetPeers(argument: _wormhole_v1_GetPeersRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_wormhole_v1_GetPeersResponse__Output>): grpc.ClientUnaryCall;
  GetPeers(argument: _wormhole_v1_GetPeersRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_wormhole_v1_GetPeersResponse__Output>): grpc.ClientUnaryCall;
  GetPeers(argument: _wormhole_v1_GetPeersRequest, callback: grpc.requestCallback<_wormhole_v1_GetPeersResponse__Output>): grpc.ClientUnaryCall;
  getPeers(argument: _wormhole_v1_GetPeersRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_wormhole_v1_GetPeersResponse__Output>): grpc.ClientUnaryCall;
  getPeers(argument: _wormhole_v1_GetPeersRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_wormhole_v1_GetPeersResponse__Output>): grpc.ClientUnaryCall;
  getPeers(argument: _wormhole_v1_GetPeersRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_wormhole_v1_GetPeersResponse__Output>): grpc.ClientUnaryCall;
  getPeers(argument: _wormhole_v1_GetPeersRequest, callback: grpc.requestCallback<_wormhole_v1_GetPeersResponse__Output>): grpc.ClientUnaryCall;
  
  Report(argument: _wormhole_v1_ReportRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_wormhole_v1_ReportResponse__Output>): grpc.ClientUnaryCall;
  Report(argument: _wormhole_v1_ReportRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_wormhole_v1_ReportResponse__Output>): grpc.ClientUnaryCall;
  Report(argument: _wormhole_v1_ReportRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_wormhole_v1_ReportResponse__Output>): grpc.ClientUnaryCall;
  Report(argument: _wormhole_v1_ReportRequest, callback: grpc.requestCallback<_wormhole_v1_ReportResponse__Output>): grpc.ClientUnaryCall;
  report(argument: _wormhole_v1_ReportRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_wormhole_v1_ReportResponse__Output>): grpc.ClientUnaryCall;
  report(argument: _wormhole_v1_ReportRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_wormhole_v1_ReportResponse__Output>): grpc.ClientUnaryCall;
  report(argument: _wormhole_v1_ReportRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_wormhole_v1_ReportResponse__Output>): grpc.ClientUnaryCall;
  report(argument: _wormhole_v1_ReportRequest, callback: grpc.requestCallback<_wormhole_v1_ReportResponse__Output>): grpc.ClientUnaryCall;
  
  Watch(argument: _wormhole_v1_WatchRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_wormhole_v1_WatchEvent__Output>;
  Watch(argument: _wormhole_v1_WatchRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_wormhole_v1_WatchEvent__Output>;
  watch(argument: _wormhole_v1_WatchRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_wormhole_v1_WatchEvent__Output>;
  watch(argument: _wormhole_v1_WatchRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_wormhole_v1_WatchEvent__Output>;
  
}

export interface RegistryHandlers extends grpc.UntypedServiceImplementation {
  GetPeers: grpc.handleUnaryCall<_wormhole_v1_GetPeersRequest__Output, _wormhole_v1_GetPeersResponse>;
  
  Report: grpc.handleUnaryCall<_wormhole_v1_ReportRequest__Output, _wormhole_v1_ReportResponse>;
  
  Watch: grpc.handleServerStreamingCall<_wormhole_v1_WatchRequest__Output, _wormhole_v1_WatchEvent>;
  
}

export interface RegistryDefinition extends grpc.ServiceDefinition {
  GetPeers: MethodDefinition<_wormhole_v1_GetPeersRequest, _wormhole_v1_GetPeersResponse, _wormhole_v1_GetPeersRequest__Output, _wormhole_v1_GetPeersResponse__Output>
  Report: MethodDefinition<_wormhole_v1_ReportRequest, _wormhole_v1_ReportResponse, _wormhole_v1_ReportRequest__Output, _wormhole_v1_ReportResponse__Output>
  Watch: MethodDefinition<_wormhole_v1_WatchRequest, _wormhole_v1_WatchEvent, _wormhole_v1_WatchRequest__Output, _wormhole_v1_WatchEvent__Output>
}
