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
 *
 * monai: MONAI's DynUNet (monai.networks.nets.DynUNet, res_block=False, the
 * nnU-Net reimplementation) onto medseg's 'unet' with the same filters,
 * kernels and strides (upsample_kernel_size = strides[1:]). Its state dict
 * names
 *   input_block.{conv1,conv2}.conv.weight, .{norm1,norm2}.*   stage 0, units 0/1
 *   downsamples.<i>.*                                         stage i+1
 *   bottleneck.*                                              the last stage
 *   upsamples.<k>.transp_conv.conv.weight                     upsampling, coarsest first
 *   upsamples.<k>.conv_block.{conv1,conv2,norm1,norm2}.*       decoder stage, coarsest first
 *   output_block.conv.conv.{weight,bias}                      the finest head
 *   deep_supervision_heads.<i>.conv.conv.*                    the head of decoder stage i+1
 * and repeats every block under `skip_layers.` (the recursive skip
 * structure that runs them), skipped as duplicates. Its convolutions have no
 * bias and its transposed convolutions none by default (trans_bias=False);
 * medseg's transposed-convolution bias starts at zero (He init) and so gives
 * the same output; with trans_bias=True the bias is copied. DynUNet pads
 * (kernel - stride + 1) // 2, which equals medseg's kernel // 2 for odd
 * kernels. One difference: a DynUNet decoder block takes the kernel of the
 * stage below it, medseg's (as nnU-Net's) the kernel of its own stage; with
 * anisotropic kernels the shapes differ and those tensors are reported as
 * skipped. res_block=True checkpoints (UnetResBlock: conv3/norm3 residual
 * projections) have a residual path medseg's unet lacks: their projections
 * are reported as skipped.
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

/** DynUNet block (UnetBasicBlock) tensor -> medseg StackedConvs tensor under `prefix`. */
function dynUnetBlock(prefix: string, rest: string): MappedName {
  const m = /^(conv|norm)([12])\.(?:conv\.)?(weight|bias)$/.exec(rest);
  if (!m) {
    if (/^(conv3|norm3)\./.test(rest)) return { skip: "residual projection (res_block=True): medseg's unet has no residual path" };
    return { skip: 'not part of a DynUNet block' };
  }
  const unit = Number(m[2]) - 1;
  if (m[1] === 'conv' && m[3] === 'bias') return { skip: 'conv bias before instance norm (removed by it)' };
  return { to: `${prefix}.convs.${unit}.${m[1]}.${m[3]}` };
}

const monai: WeightMapping = (name, o) => {
  if (name.startsWith('skip_layers.')) return { skip: "duplicate of a block (DynUNet's skip layers hold them)" };
  const last = o.decoderStages;
  let m = /^input_block\.(.+)$/.exec(name);
  if (m) return dynUnetBlock('encoder.0', m[1]!);
  m = /^downsamples\.(\d+)\.(.+)$/.exec(name);
  if (m) return dynUnetBlock(`encoder.${Number(m[1]) + 1}`, m[2]!);
  m = /^bottleneck\.(.+)$/.exec(name);
  if (m) return dynUnetBlock(`encoder.${last}`, m[1]!);
  m = /^upsamples\.(\d+)\.transp_conv\.conv\.(weight|bias)$/.exec(name);
  if (m) return { to: `ups.${m[1]}.op.${m[2]}` };
  m = /^upsamples\.(\d+)\.conv_block\.(.+)$/.exec(name);
  if (m) return dynUnetBlock(`decoder.${m[1]}`, m[2]!);
  m = /^output_block\.conv\.conv\.(weight|bias)$/.exec(name);
  if (m) return { to: `seg_heads.${o.deepSupervision ? last - 1 : 0}.${m[1]}` };
  m = /^deep_supervision_heads\.(\d+)\.conv\.conv\.(weight|bias)$/.exec(name);
  if (m) {
    // Head i sits on decoder stage s = i + 1; medseg lists heads coarsest first (index last - 1 - s).
    const k = last - 2 - Number(m[1]);
    return o.deepSupervision && k >= 0 ? { to: `seg_heads.${k}.${m[2]}` } : { skip: 'deep-supervision head (this network has none)' };
  }
  return { skip: 'not part of a DynUNet' };
};

const medseg: WeightMapping = (name) => ({ to: name });

export const WEIGHT_MAPPINGS = { medseg, nnunet, monai } as const;
export type WeightMappingName = keyof typeof WEIGHT_MAPPINGS;
