/**
 * Grad-CAM (and Grad-CAM++) for classifiers: the explained score is one
 * class's whole-image logit, the layer is the classifier's last spatial
 * feature map (its camLayer) unless named, and the map is upsampled (linear)
 * to the input. The machinery (capturing a layer, frozen parameters, the
 * weights and the map) is the segmentation Grad-CAM's (gradcam.ts, layers.ts).
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import type { ClassificationNetwork } from '../models/classifier-config.ts';
import { camFromActivation } from './gradcam.ts';
import { findLayer, forwardCapturing, withFrozenParameters } from './layers.ts';
import { MedsegExplainError } from './errors.ts';
import { renderVolumeHeatOverlayPng } from './heat-overlay.ts';

export interface ClassifierCamOptions {
  classIndex: number;
  /** Dotted module name (default the classifier's camLayer). */
  layer?: string;
  plusPlus?: boolean;
}

/** The class-activation map [...spatial] of one image x [1, C, ...spatial] for a class (a non-negative float map). */
export function classifierGradCam(net: ClassificationNetwork, x: Tensor, o: ClassifierCamOptions): Tensor {
  const K = net.config.numClasses;
  if (!Number.isInteger(o.classIndex) || o.classIndex < 0 || o.classIndex >= K) {
    throw new MedsegExplainError('BAD_OPTION', `class ${o.classIndex} is not one of the classifier's classes 0..${K - 1}`);
  }
  if (x.ndim !== net.config.dims + 2 || x.size(0) !== 1)
    throw new MedsegExplainError('BAD_OPTION', `Grad-CAM explains one image [1, C, ...spatial], got [${x.shape}]`);
  const name = o.layer ?? net.camLayer;
  const layer = findLayer(net, name);
  const spatial = x.shape.slice(2);
  const wasTraining = net.training;
  net.eval();
  try {
    return torch.tidy(() =>
      torch.enableGrad(() =>
        withFrozenParameters(net, () => {
          const { logits, activation } = forwardCapturing(net, layer, name, x.detach().requiresGrad_(true));
          try {
            if (activation.ndim !== spatial.length + 2) {
              throw new MedsegExplainError(
                'NO_LAYER',
                `layer '${name}' outputs [${activation.shape}], not a feature map [N, C, ...spatial]: choose a convolutional stage`,
              );
            }
            logits.select(1, o.classIndex).sum().backward();
            const grad = activation.grad;
            if (!grad) throw new MedsegExplainError('NO_LAYER', `layer '${name}' got no gradient: it does not influence the logits`);
            const cam = camFromActivation(activation.detach(), grad, o.plusPlus ?? false); // [1, ...s]
            const same = cam.shape.slice(1).join(',') === spatial.join(',');
            return (same ? cam : torch.F.interpolate(cam.unsqueeze(0), { size: spatial, mode: 'linear' }).squeeze(0)).squeeze(0);
          } finally {
            activation.dispose();
          }
        }),
      ),
    );
  } finally {
    net.train(wasTraining);
  }
}

/**
 * A PNG of the heat map over the image: image [...spatial] (one channel,
 * C-order: [H, W] or [D, H, W]), heat of the same shape; 3D shows the slice
 * with the most heat.
 */
export function classifierHeatPng(image: Float32Array, heat: Float32Array, spatial: number[]): Buffer {
  const size: [number, number, number] = spatial.length === 2 ? [spatial[1]!, spatial[0]!, 1] : [spatial[2]!, spatial[1]!, spatial[0]!];
  return renderVolumeHeatOverlayPng(image, heat, new Uint8Array(image.length), size).png;
}
