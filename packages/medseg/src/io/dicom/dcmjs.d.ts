// dcmjs ships no type declarations; we only use its data dictionary (dictionary.ts).
declare module 'dcmjs' {
  const dcmjs: unknown;
  export default dcmjs;
}
