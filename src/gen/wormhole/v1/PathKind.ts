// Original file: proto/wormhole/v1/registry.proto

export const PathKind = {
  PATH_KIND_UNSPECIFIED: 'PATH_KIND_UNSPECIFIED',
  PATH_KIND_DIRECT: 'PATH_KIND_DIRECT',
  PATH_KIND_LAN: 'PATH_KIND_LAN',
  PATH_KIND_RELAYED: 'PATH_KIND_RELAYED',
  PATH_KIND_DOWN: 'PATH_KIND_DOWN',
} as const;

export type PathKind =
  | 'PATH_KIND_UNSPECIFIED'
  | 0
  | 'PATH_KIND_DIRECT'
  | 1
  | 'PATH_KIND_LAN'
  | 2
  | 'PATH_KIND_RELAYED'
  | 3
  | 'PATH_KIND_DOWN'
  | 4

export type PathKind__Output = typeof PathKind[keyof typeof PathKind]
