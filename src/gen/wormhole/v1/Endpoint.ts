// Original file: proto/wormhole/v1/registry.proto


export interface Endpoint {
  'ip'?: (string);
  'port'?: (number);
}

export interface Endpoint__Output {
  'ip': (string);
  'port': (number);
}
