/**
 * The fixed split of MSD hippocampus (Task04) used by the demo, the
 * hippocampus benchmark and the comparison study: 140 training and
 * 34 validation cases, made once by a seeded Fisher-Yates shuffle
 * (mulberry32, seed 20261123) of the sorted case ids. It is fixed so that every
 * run and every architecture is scored on the same cases: never regenerate it.
 */
export const HIPPOCAMPUS_SPLIT: { train: string[]; validation: string[] } = {
  train: [
    'hippocampus_001', 'hippocampus_003', 'hippocampus_006', 'hippocampus_007', 'hippocampus_011', 'hippocampus_017', 'hippocampus_019',
    'hippocampus_023', 'hippocampus_024', 'hippocampus_035', 'hippocampus_036', 'hippocampus_041', 'hippocampus_045', 'hippocampus_046',
    'hippocampus_049', 'hippocampus_050', 'hippocampus_052', 'hippocampus_053', 'hippocampus_058', 'hippocampus_064', 'hippocampus_068',
    'hippocampus_070', 'hippocampus_075', 'hippocampus_077', 'hippocampus_089', 'hippocampus_090', 'hippocampus_092', 'hippocampus_095',
    'hippocampus_096', 'hippocampus_098', 'hippocampus_102', 'hippocampus_104', 'hippocampus_106', 'hippocampus_107', 'hippocampus_109',
    'hippocampus_114', 'hippocampus_124', 'hippocampus_127', 'hippocampus_130', 'hippocampus_133', 'hippocampus_138', 'hippocampus_141',
    'hippocampus_144', 'hippocampus_148', 'hippocampus_152', 'hippocampus_155', 'hippocampus_156', 'hippocampus_158', 'hippocampus_162',
    'hippocampus_163', 'hippocampus_165', 'hippocampus_166', 'hippocampus_170', 'hippocampus_171', 'hippocampus_173', 'hippocampus_174',
    'hippocampus_177', 'hippocampus_180', 'hippocampus_181', 'hippocampus_185', 'hippocampus_190', 'hippocampus_195', 'hippocampus_203',
    'hippocampus_210', 'hippocampus_215', 'hippocampus_216', 'hippocampus_219', 'hippocampus_220', 'hippocampus_222', 'hippocampus_223',
    'hippocampus_225', 'hippocampus_226', 'hippocampus_228', 'hippocampus_229', 'hippocampus_231', 'hippocampus_232', 'hippocampus_234',
    'hippocampus_238', 'hippocampus_242', 'hippocampus_245', 'hippocampus_249', 'hippocampus_252', 'hippocampus_253', 'hippocampus_259',
    'hippocampus_260', 'hippocampus_263', 'hippocampus_264', 'hippocampus_268', 'hippocampus_269', 'hippocampus_276', 'hippocampus_277',
    'hippocampus_280', 'hippocampus_282', 'hippocampus_287', 'hippocampus_288', 'hippocampus_290', 'hippocampus_292', 'hippocampus_295',
    'hippocampus_296', 'hippocampus_298', 'hippocampus_299', 'hippocampus_301', 'hippocampus_302', 'hippocampus_304', 'hippocampus_305',
    'hippocampus_309', 'hippocampus_310', 'hippocampus_316', 'hippocampus_318', 'hippocampus_319', 'hippocampus_321', 'hippocampus_322',
    'hippocampus_326', 'hippocampus_327', 'hippocampus_329', 'hippocampus_330', 'hippocampus_332', 'hippocampus_335', 'hippocampus_336',
    'hippocampus_338', 'hippocampus_345', 'hippocampus_350', 'hippocampus_353', 'hippocampus_354', 'hippocampus_358', 'hippocampus_360',
    'hippocampus_361', 'hippocampus_366', 'hippocampus_367', 'hippocampus_370', 'hippocampus_372', 'hippocampus_374', 'hippocampus_375',
    'hippocampus_380', 'hippocampus_383', 'hippocampus_385', 'hippocampus_387', 'hippocampus_389', 'hippocampus_393', 'hippocampus_394',
  ],
  validation: [
    'hippocampus_014', 'hippocampus_026', 'hippocampus_033', 'hippocampus_038', 'hippocampus_039', 'hippocampus_042', 'hippocampus_057',
    'hippocampus_065', 'hippocampus_084', 'hippocampus_087', 'hippocampus_093', 'hippocampus_099', 'hippocampus_125', 'hippocampus_135',
    'hippocampus_143', 'hippocampus_146', 'hippocampus_150', 'hippocampus_160', 'hippocampus_176', 'hippocampus_188', 'hippocampus_193',
    'hippocampus_197', 'hippocampus_204', 'hippocampus_207', 'hippocampus_235', 'hippocampus_244', 'hippocampus_250', 'hippocampus_314',
    'hippocampus_333', 'hippocampus_340', 'hippocampus_343', 'hippocampus_351', 'hippocampus_356', 'hippocampus_378',
  ],
};
