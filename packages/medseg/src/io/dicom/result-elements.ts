/**
 * Building blocks shared by the SEG and RTSTRUCT writers: UTF-8 text
 * elements, code items, the Algorithm Identification Macro, the source
 * instances and frames a result references, default colours.
 */
import type { Volume } from '../volume.ts';
import type { DicomDataset, DicomElement } from './dataset.ts';
import { T } from './dictionary.ts';
import { R } from './result-tags.ts';
import type { Code } from './seg-read.ts';
import { dataset, el } from './write.ts';

/** CID 7162 "Artificial Intelligence": the family of a trained network. */
export const AI_ALGORITHM_FAMILY: Code = { value: '123110', scheme: 'DCM', meaning: 'Artificial Intelligence' };
/** Display colours of segments / ROIs given none, in turn. */
export const DEFAULT_COLOURS: [number, number, number][] = [
  [221, 130, 101],
  [128, 174, 128],
  [241, 214, 145],
  [177, 122, 101],
  [111, 184, 210],
  [216, 101, 79],
  [183, 156, 220],
  [252, 231, 140],
];

/** A text element in UTF-8 (the written SpecificCharacterSet is ISO_IR 192). */
export function text(tag: number, vr: string, value: string): DicomElement {
  return el.str(tag, vr, value, true);
}

export function codeItem(c: Code): DicomDataset {
  return dataset(el.str(T.CodeValue, 'SH', c.value), el.str(T.CodingSchemeDesignator, 'SH', c.scheme), text(T.CodeMeaning, 'LO', c.meaning));
}

/** The Algorithm Identification Macro (PS3.3 Table 10-19): family, name, version. */
export function algorithmIdentification(family: Code, name: string, version: string): DicomDataset {
  return dataset(
    el.seq(R.AlgorithmFamilyCodeSequence, [codeItem(family)]),
    text(R.AlgorithmVersion, 'LO', version.slice(0, 64)),
    text(R.AlgorithmName, 'LO', name.slice(0, 64)),
  );
}

/** One item per distinct source instance (a multi-frame source is one instance), in slice order. */
export function distinctInstances(sops: string[]): string[] {
  return [...new Set(sops)];
}

/** Each source slice's frame number within its instance when the source has multi-frame instances, else undefined. */
export function sourceFrameNumbers(source: Volume): number[] | undefined {
  const f = source.meta.extra?.frameNumbers;
  return Array.isArray(f) && f.length === source.size[2] ? (f as number[]) : undefined;
}
