/**
 * Names of weights trained elsewhere, mapped to medseg's. A mapping returns
 * the medseg name of a source tensor, or why it is left out.
 *
 * nnunet: nnU-Net v2's PlainConvUNet (dynamic-network-architectures), the
 * network of its 2d / 3d_fullres configurations, onto medseg's 'unet' with
 * the same plan (features, kernels, strides). Its state dict names
 *   encoder.stages.<s>.0.convs.<i>.{conv,norm}.*   encoder stage s, unit i
 *   decoder.stages.<s>.convs.<i>.{conv,norm}.*      decoder stage s, coarsest first
 *   decoder.transpconvs.<s>.{weight,bias}           upsampling, coarsest first
 *   decoder.seg_layers.<s>.{weight,bias}            one head per decoder stage, coarsest first
 * and repeats every tensor under `.all_modules.<k>` and `decoder.encoder.`,
 * which are skipped as duplicates. medseg lists decoder stages, upsamplers
 * and heads coarsest first too, and concatenates (upsampled, skip) in the
 * same order, so only names change. nnU-Net's convolutions have a bias,
 * medseg's do not: the instance norm right after a convolution subtracts
 * each channel's mean, which removes a constant bias exactly, so the bias is
 * dropped (this holds for instance norm only: the caller refuses other norms).
 * Without deep supervision medseg keeps only the finest head, nnU-Net's last
 * seg layer.
 */
export type MappedName = { to: string } | { skip: string };

export type WeightMapping = (name: string, o: { deepSupervision: boolean; decoderStages: number }) => MappedName;

const nnunet: WeightMapping = (name, o) => {
  if (name.includes('.all_modules.')) return { skip: 'duplicate of the named conv/norm' };
  if (name.startsWith('decoder.encoder.')) return { skip: "duplicate of the encoder (nnU-Net's decoder holds it)" };
  let m = /^encoder\.stages\.(\d+)\.0\.convs\.(\d+)\.(conv|norm)\.(weight|bias)$/.exec(name);
  if (m)
    return m[3] === 'conv' && m[4] === 'bias'
      ? { skip: 'conv bias before instance norm (removed by it)' }
      : { to: `encoder.${m[1]}.convs.${m[2]}.${m[3]}.${m[4]}` };
  m = /^decoder\.stages\.(\d+)\.convs\.(\d+)\.(conv|norm)\.(weight|bias)$/.exec(name);
  if (m)
    return m[3] === 'conv' && m[4] === 'bias'
      ? { skip: 'conv bias before instance norm (removed by it)' }
      : { to: `decoder.${m[1]}.convs.${m[2]}.${m[3]}.${m[4]}` };
  m = /^decoder\.transpconvs\.(\d+)\.(weight|bias)$/.exec(name);
  if (m) return { to: `ups.${m[1]}.op.${m[2]}` };
  m = /^decoder\.seg_layers\.(\d+)\.(weight|bias)$/.exec(name);
  if (m) {
    const s = Number(m[1]);
    if (o.deepSupervision) return { to: `seg_heads.${s}.${m[2]}` };
    return s === o.decoderStages - 1 ? { to: `seg_heads.0.${m[2]}` } : { skip: 'deep-supervision head (this network has none)' };
  }
  return { skip: 'not part of a PlainConvUNet' };
};

const medseg: WeightMapping = (name) => ({ to: name });

export const WEIGHT_MAPPINGS = { medseg, nnunet } as const;
export type WeightMappingName = keyof typeof WEIGHT_MAPPINGS;
