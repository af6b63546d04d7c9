// InferencePool (inference.networking.k8s.io/v1) as the Gateway API Inference Extension's v1 CRD defines it
// (config/crd/bases/inference.networking.k8s.io_inferencepools.yaml, release v1.6.0): every spec field, so that a
// misspelt field is an excess-property error. Ranges and patterns are checked in validate.mjs.
import type { IObjectMeta } from "@kubernetes-models/apimachinery/apis/meta/v1/ObjectMeta";

export interface IInferencePool {
  apiVersion: "inference.networking.k8s.io/v1";
  kind: "InferencePool";
  metadata: IObjectMeta;
  spec: {
    selector: { matchLabels: { [label: string]: string } };
    targetPorts: { number: number }[];
    appProtocol?: "http" | "kubernetes.io/h2c";
    endpointPickerRef: {
      group?: string;
      kind?: string;
      name: string;
      port?: { number: number };
      failureMode?: "FailOpen" | "FailClose";
    };
  };
}
