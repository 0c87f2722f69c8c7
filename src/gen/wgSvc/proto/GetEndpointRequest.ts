// Original file: proto/wgSvc.proto


export interface GetEndpointRequest {
  'token'?: (string);
}

export interface GetEndpointRequest__Output {
  'token': (string);
}
