// Original file: proto/wgSvc.proto

import type { Long } from '@grpc/proto-loader';

export interface Peer {
  'pubKey'?: (string);
  'lastHandshakeUnixTimestamp'?: (number | string | Long);
  'TransmitBytes'?: (number | string | Long);
  'ReceiveBytes'?: (number | string | Long);
  'AllowedIPs'?: (string)[];
  'endpointIP'?: (string);
  'endpointPort'?: (number);
}

export interface Peer__Output {
  'pubKey': (string);
  'lastHandshakeUnixTimestamp': (number);
  'TransmitBytes': (number);
  'ReceiveBytes': (number);
  'AllowedIPs': (string)[];
  'endpointIP': (string);
  'endpointPort': (number);
}
