/**
 * The Brown corpus's tagged sentences back to prose (src/corpus/brown.ts), on lines as the corpus files
 * hold them (the first lines of text A01, K01 and P05), against the prose as it was printed.
 */
import { describe, expect, it } from 'vitest';
import { brownBlock, brownHeading, brownParagraphs, detokenizeSentence, untag } from '../src/corpus/brown.ts';

describe('Brown corpus to prose', () => {
  it('drops the tags, keeping a slash inside a word', () => {
    expect(untag("Atlanta's/np$")).toBe("Atlanta's");
    expect(untag('1/2/cd')).toBe('1/2');
    expect(untag('./.')).toBe('.');
  });

  it('attaches punctuation and quotes as printed', () => {
    expect(
      detokenizeSentence(
        "The/at Fulton/np-tl County/nn-tl Grand/jj-tl Jury/nn-tl said/vbd Friday/nr an/at investigation/nn of/in Atlanta's/np$ recent/jj primary/nn election/nn produced/vbd ``/`` no/at evidence/nn ''/'' that/cs any/dti irregularities/nns took/vbd place/nn ./.",
      ),
    ).toBe(
      'The Fulton County Grand Jury said Friday an investigation of Atlanta\'s recent primary election produced "no evidence" that any irregularities took place.',
    );
    // A comma after a closing quote goes back inside it; a dash joins its words.
    expect(
      detokenizeSentence(
        "``/`` Only/rb a/at relative/jj handful/nn was/bedz received/vbn ''/'' ,/, the/at jury/nn said/vbd ./.",
      ),
    ).toBe('"Only a relative handful was received," the jury said.');
    expect(
      detokenizeSentence("``/`` What/wdt do/do you/ppss mean/vb ''/'' ?/. Waddell/np asked/vbd ./."),
    ).toBe('"What do you mean?" Waddell asked.');
    expect(detokenizeSentence("the/at word/nn ``/`` now/rb ''/'' ;/. then/rb ./.")).toBe(
      'the word "now"; then.',
    );
    expect(detokenizeSentence('Hospital/nn-tl --/-- Mr./np McKinley/np ./.')).toBe('Hospital—Mr. McKinley.');
    expect(detokenizeSentence('(/( e.g./rb ,/, Garstung/np ,/, 1958/cd )/) ./.')).toBe(
      '(e.g., Garstung, 1958).',
    );
  });

  it('writes a doubled mark or a stop after an abbreviation once', () => {
    expect(detokenizeSentence('won/vbn by/in Ivan/np Allen/np Jr./np ./.')).toBe('won by Ivan Allen Jr.');
    expect(detokenizeSentence('blue/jj eyes/nns ;/. ;/.')).toBe('blue eyes;');
  });

  it('leaves out a sentence with a formula placeholder', () => {
    expect(detokenizeSentence('than/cs the/at **yl/nn point/nn ./.')).toBeUndefined();
  });

  it("joins a paragraph's sentences and keeps a headline apart", () => {
    const file = [
      '',
      '',
      '',
      'Thirty-three/cd-hl ',
      'Scotty/np did/dod not/* go/vb back/rb to/in school/nn ./.',
      'His/pp$ parents/nns talked/vbd ./.',
      '',
      '',
      '\tScotty/np accepted/vbd ./.',
      '',
      'x/nn **zg/nn ./.',
      '',
    ].join('\n');
    expect(brownParagraphs(file)).toEqual([
      'Thirty-three',
      'Scotty did not go back to school. His parents talked.',
      'Scotty accepted.',
    ]);
    expect(brownBlock('ck01', file).split('\n')).toEqual([
      'Brown K01 (fiction: general)',
      'Thirty-three',
      'Scotty did not go back to school. His parents talked.',
      'Scotty accepted.',
    ]);
  });

  it('names each text by its id and genre, and refuses what is not an id', () => {
    expect(brownHeading('ca01')).toBe('Brown A01 (press: reportage)');
    expect(brownHeading('cr09')).toBe('Brown R09 (humor)');
    expect(() => brownHeading('ci01')).toThrow(/not a Brown corpus text id/);
    expect(() => brownHeading('README')).toThrow(/not a Brown corpus text id/);
  });
});
