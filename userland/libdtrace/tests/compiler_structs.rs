//! Whole-struct translation (`xlate<T>(x)`, `xlate<T *>(x)`, `*xlate<T *>(x)`) and stores into
//! members of struct-valued associative-array elements, run on the hosted kernel.

mod common;

/// Compiles `source`, runs it on the hosted kernel until it exits and returns its quiet output.
fn run(source: &str) -> String {
    common::run_ok(source)
}

const TRANSLATOR: &str = "
struct in { int a; char c; long l; };
struct out { int x; char y; long z; struct in sub; int bf : 3; int bg : 5; int unset; };
translator struct out < struct in *p > {
    x = p->a * 2; y = p->c; z = p->l + 1; sub = *p; bf = 3; bg = -2;
};
";

const INPUT: &str = "this->v = (struct in *)alloca(sizeof (struct in));
    this->v->a = 21; this->v->c = 'q'; this->v->l = 1000;";

#[test]
fn translated_pointer_has_every_member_filled_in() {
    let out = run(&format!(
        "{TRANSLATOR} BEGIN {{ {INPUT}
           this->o = xlate<struct out *>(this->v);
           printf(\"%d %c %d %d %d %d %d %d\\n\", this->o->x, this->o->y, this->o->z,
               this->o->sub.a, this->o->sub.l, this->o->bf, this->o->bg, this->o->unset);
           exit(0); }}"
    ));
    assert_eq!(out, "42 q 1001 21 1000 3 -2 0\n\n");
}

#[test]
fn translated_struct_is_copied_into_variables() {
    let out = run(&format!(
        "{TRANSLATOR} BEGIN {{ {INPUT}
           s = *xlate<struct out *>(this->v);
           self->t = xlate<struct out>(this->v);
           a[1] = xlate<struct out>(this->v);
           this->v->a = 0;
           printf(\"%d %c %c %d %d %d\\n\", s.x, s.y, s.sub.c, self->t.x, self->t.z, a[1].z);
           exit(0); }}"
    ));
    // Copies, not references: changing the input afterwards changes none of them.
    assert_eq!(out, "42 q q 42 1001 1001\n\n");
}

#[test]
fn members_of_missing_associative_array_elements_are_faulted_in() {
    let out = run("struct foo { int a; long b; };
        struct foo a[int];
        self struct foo t[string];
        BEGIN {
            a[1].a = 5; a[1].b = 7;
            a[2].b += 3; a[2].b += 3;
            self->t[\"k\"].b = -9;
            printf(\"%d %d %d %d %d\\n\", a[1].a, a[1].b, a[2].a, a[2].b, self->t[\"k\"].b);
            exit(0); }");
    assert_eq!(out, "5 7 0 6 -9\n\n");
    // A whole struct copied into a member of a missing element.
    let out = run("struct in { int a; long b; };
        struct out { int x; struct in s; };
        struct out o[int];
        struct in v;
        BEGIN {
            v.a = 7; v.b = 9;
            o[1].s = v;
            o[1].x = 3;
            printf(\"%d %d %d\\n\", o[1].x, o[1].s.a, o[1].s.b);
            exit(0); }");
    assert_eq!(out, "3 7 9\n\n");
}

#[test]
fn strings_are_stored_through_pointers_by_copying() {
    let out = run("#pragma D option scratchsize=600
        BEGIN {
            x = (string *)alloca(sizeof (string) + 1);
            *x = \"abc\";
            printf(\"%s\\n\", *x);
            exit(0); }");
    assert_eq!(out, "abc\n\n");
}

#[test]
fn bitfields_use_libdtraces_layout_and_read_back_what_was_stored() {
    let out = run(
        "struct bits { int a : 1; int b : 3; unsigned int c : 12; int d : 20; int e; };
        BEGIN {
            p = (struct bits *)alloca(sizeof (struct bits));
            p->a = 1; p->b = -3; p->c = 4000; p->d = -70000;
            printf(\"%d %d %d %d %d %d\\n\", sizeof (struct bits),
                offsetof(struct bits, e), p->a, p->b, p->c, p->d);
            exit(0); }",
    );
    // a: 1 byte at 0, b: 1 byte at 1, c: 2 bytes at 2, d: 4 bytes at 4, e after d's last bit
    // (bit 52) rounded up to its alignment: 8; no tail padding: 12. A 1-bit signed field
    // holding 1 reads back as -1, as in C.
    assert_eq!(out, "12 8 -1 -3 4000 -70000\n\n");
}
