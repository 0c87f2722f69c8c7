// Original file: proto/wgSvc.proto


export interface RegRequest {
}

export interface RegRequest__Output {
}
