// Original file: proto/wormhole/v1/registry.proto


export interface ReportResponse {
}

export interface ReportResponse__Output {
}
