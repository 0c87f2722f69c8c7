// Original file: proto/wgSvc.proto


export interface RegReply {
}

export interface RegReply__Output {
}
